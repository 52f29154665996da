import assert from 'node:assert/strict';
import { connect, constants, type ClientHttp2Session } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { METHODS } from './grpc-client.ts';
import { type KvGateway, startKvGateway } from './harness.ts';

/** gRPC statuses a malformed or unauthenticated call may get; anything else is a bug. */
const ALLOWED = new Set(['3', '8', '12', '16']);

void describe('kv door against malformed gRPC frames', () => {
  let gw: KvGateway;
  let session: ClientHttp2Session;
  let token: string;
  const call = (method: string, body: Buffer, auth: boolean, contentType = 'application/grpc') =>
    new Promise<{ status: string | undefined; http: number | undefined; text: string }>((resolve, reject) => {
      const stream = session.request({
        [constants.HTTP2_HEADER_METHOD]: 'POST',
        [constants.HTTP2_HEADER_PATH]: `/gatehouse.kv.v1.KvService/${method}`,
        'content-type': contentType,
        te: 'trailers',
        ...(auth ? { authorization: `Bearer ${token}` } : {}),
      });
      let http: number | undefined;
      let status: string | undefined;
      stream.on('response', (h) => {
        http = Number(h[':status']);
        status ??= h['grpc-status'] as string | undefined;
      });
      stream.on('trailers', (t) => {
        status = t['grpc-status'] as string | undefined;
      });
      let text = '';
      stream.on('data', (d: Buffer) => {
        text += d.toString('latin1');
      });
      stream.on('end', () => resolve({ status, http, text }));
      stream.on('error', reject);
      stream.end(body);
    });
  before(async () => {
    gw = await startKvGateway();
    token = await gw.token(['operator:orders']);
    session = connect(gw.url, { ca: gw.ca, servername: 'localhost' });
  });
  after(async () => {
    session?.close();
    await gw?.close();
  });

  void it('answers random and truncated frames on every method with a defined status', async () => {
    const frame = fc.oneof(
      // A well-formed envelope around random bytes (an undecodable or hostile message).
      fc.uint8Array({ maxLength: 300 }).map((payload) => {
        const head = Buffer.alloc(5);
        head.writeUInt32BE(payload.length, 1);
        return Buffer.concat([head, payload]);
      }),
      // Envelopes that lie about their length, set the compressed flag, or are cut short.
      fc
        .tuple(fc.integer({ min: 0, max: 255 }), fc.nat(), fc.uint8Array({ maxLength: 64 }))
        .map(([flag, len, payload]) => {
          const head = Buffer.alloc(5);
          head.writeUInt8(flag, 0);
          head.writeUInt32BE(len % 2 ** 32, 1);
          return Buffer.concat([head, payload]);
        }),
      fc.uint8Array({ maxLength: 4 }).map((b) => Buffer.from(b)),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...METHODS), frame, fc.boolean(), async (method, body, auth) => {
        const { status, http } = await call(method, body, auth);
        assert.equal(http, 200);
        assert.ok(status !== undefined && (status === '0' || ALLOWED.has(status)), `grpc-status ${status}`);
      }),
      { numRuns: 200 },
    );
    // The same bodies over gRPC-Web and the Connect protocol: never INTERNAL for the client's bytes.
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...METHODS), frame, async (method, body) => {
        const web = await call(method, body, true, 'application/grpc-web+proto');
        assert.doesNotMatch(web.text, /grpc-status: 13/, web.text);
        const connect = await call(method, body.subarray(5), true, 'application/proto');
        assert.notEqual(connect.http, 500, connect.text);
        assert.doesNotMatch(connect.text, /"code":"internal"/);
      }),
      { numRuns: 100 },
    );
    // Still serving well-formed calls.
    const ok = await call('Get', Buffer.from([0, 0, 0, 0, 0]), true);
    assert.equal(ok.status, '3', 'an empty Get names the missing namespace');
  });
});
