import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, constants } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import fc from 'fast-check';
import { Agent, fetch } from 'undici';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { KvService, SetRequestSchema, SetResponseSchema } from '#gen/gatehouse/kv/v1/kv_pb.ts';
import { expectStatus, grpcClient, METHODS, sampleRequest } from './grpc-client.ts';
import { type KvGateway, startKvGateway } from './harness.ts';

/**
 * Connect protocol error codes a client's own input can cause. Not `unavailable`: the suite's
 * gateway stores in memory, so a backend failure there would be the door's own fault.
 */
const CONNECT_CODES = new Set([
  'invalid_argument',
  'unauthenticated',
  'permission_denied',
  'resource_exhausted',
  'not_found',
  'aborted',
]);

/** An HTTP/2 client of a gateway whose certificate `ca` issued. */
const h2Agent = (ca: string) => new Agent({ allowH2: true, connect: { ca, servername: 'localhost' } });

/** A Connect JSON call (POST) to `url` through `agent`, with a bearer token. */
async function postTo(
  url: string,
  agent: Agent,
  token: string,
  method: string,
  body: string | Uint8Array,
  headers: Record<string, string> = {},
) {
  const res = await fetch(`${url}/gatehouse.kv.v1.KvService/${method}`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers },
    dispatcher: agent,
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    json: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>),
  };
}

/** One gRPC-Web frame: flags, 32-bit length, payload. */
function frame(flags: number, payload: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

/** The value stored at `key` of the orders namespace, read back through Connect JSON. */
async function readBack(url: string, agent: Agent, token: string, key: string): Promise<Buffer> {
  const got = await postTo(url, agent, token, 'Get', JSON.stringify({ namespace: 'orders', key }));
  const entry = got.json?.['entry'] as { value?: string } | undefined;
  return Buffer.from(entry?.value ?? '', 'base64');
}

void describe('kv door over Connect JSON (fetch, HTTP/2) and gRPC-Web', () => {
  let gw: KvGateway;
  let agent: Agent;
  let token: string;
  const post = (method: string, body: string, headers: Record<string, string> = {}) =>
    postTo(gw.url, agent, token, method, body, headers);
  before(async () => {
    gw = await startKvGateway();
    agent = h2Agent(gw.ca);
    token = await gw.token(['operator:orders']);
  });
  after(async () => {
    await agent?.close();
    await gw?.close();
  });

  void it('serves the same API as JSON, values base64-encoded', async () => {
    const set = await post(
      'Set',
      JSON.stringify({
        namespace: 'orders',
        key: 'j',
        value: Buffer.from('hi').toString('base64'),
        ttlSeconds: 60,
      }),
    );
    assert.equal(set.status, 200, JSON.stringify(set.json));
    assert.ok(set.headers.get('ratelimit-remaining') !== null);
    const got = await post('Get', JSON.stringify({ namespace: 'orders', key: 'j' }));
    assert.equal(got.status, 200);
    assert.equal(
      Buffer.from(
        String((got.json?.['entry'] as Record<string, unknown> | undefined)?.['value']),
        'base64',
      ).toString(),
      'hi',
    );
  });

  void it('serves gRPC-Web text mode (base64 frames), the default of the grpc-web client', async () => {
    const send = async (body: string, headers: Record<string, string>) => {
      const res = await fetch(`${gw.url}/gatehouse.kv.v1.KvService/Set`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/grpc-web-text', 'x-grpc-web': '1', ...headers },
        dispatcher: agent,
      });
      const bytes = Buffer.from(await res.text(), 'base64');
      // The frames: the message (flag 0), then the trailers (flag 0x80) as HTTP header lines.
      const frames: { flags: number; payload: Buffer }[] = [];
      for (let at = 0; at + 5 <= bytes.length; ) {
        const length = bytes.readUInt32BE(at + 1);
        frames.push({ flags: bytes[at] ?? 0, payload: bytes.subarray(at + 5, at + 5 + length) });
        at += 5 + length;
      }
      const trailer = frames.find((f) => f.flags === 0x80)?.payload.toString() ?? '';
      const status = /grpc-status: ?(\d+)/i.exec(trailer)?.[1] ?? res.headers.get('grpc-status');
      return { res, frames, status };
    };
    const set = toBinary(
      SetRequestSchema,
      create(SetRequestSchema, { namespace: 'orders', key: 'text-mode', value: Buffer.from('hi') }),
    );
    const ok = await send(frame(0, set).toString('base64'), { authorization: `Bearer ${token}` });
    assert.equal(ok.res.status, 200);
    assert.equal(ok.res.headers.get('content-type'), 'application/grpc-web-text+proto');
    assert.equal(ok.status, '0');
    assert.ok(fromBinary(SetResponseSchema, ok.frames[0]?.payload ?? Buffer.alloc(0)).version > 0n);
    // Sent in two padded base64 pieces, as a client may.
    const whole = frame(0, set);
    const pieces = whole.subarray(0, 7).toString('base64') + whole.subarray(7).toString('base64');
    assert.equal((await send(pieces, { authorization: `Bearer ${token}` })).status, '0');
    assert.equal((await readBack(gw.url, agent, token, 'text-mode')).toString(), 'hi');
    // Refusals keep their status and code in text mode too.
    const anonymous = await send(frame(0, set).toString('base64'), {});
    assert.equal(anonymous.status, '16');
    const malformed = await send('%%%not base64', { authorization: `Bearer ${token}` });
    assert.equal(malformed.status, '3');
    assert.equal(malformed.res.headers.get('gatehouse-error-code'), 'GW_ERR_KV_MESSAGE_MALFORMED');
  });

  void it('refuses invalid UTF-8 in a JSON message instead of storing another key', async () => {
    // A lenient decoder turns the byte 0xFF into U+FFFD: every such key would alias one stored key.
    const body = Buffer.concat([
      Buffer.from('{"namespace":"orders","key":"utf8-'),
      Buffer.from([0xff]),
      Buffer.from('","value":"aGk="}'),
    ]);
    const refused = await postTo(gw.url, agent, token, 'Set', body);
    assert.equal(refused.status, 400, JSON.stringify(refused.json));
    assert.equal(refused.json?.['code'], 'invalid_argument');
    assert.equal(refused.headers.get('gatehouse-error-code'), 'GW_ERR_KV_MESSAGE_MALFORMED');
    const listed = await postTo(
      gw.url,
      agent,
      token,
      'List',
      JSON.stringify({ namespace: 'orders', prefix: 'utf8-' }),
    );
    assert.deepEqual(listed.json?.['keys'] ?? [], [], 'nothing was stored');
  });

  void it('takes a JSON value of the largest size (base64 is 4/3 larger) and stops a refused upload at once', async () => {
    const capped = await startKvGateway({ kv: { limits: { maxValueSize: '3MiB' } } });
    const h2 = h2Agent(capped.ca);
    const session = connect(capped.url, { ca: capped.ca, servername: 'localhost' });
    session.on('error', () => undefined);
    try {
      const own = await capped.token(['operator:orders']);
      const value = Buffer.alloc(3 * 1024 * 1024, 7);
      const json = JSON.stringify({ namespace: 'orders', key: 'largest', value: value.toString('base64') });
      const stored = await postTo(capped.url, h2, own, 'Set', json);
      assert.equal(stored.status, 200, JSON.stringify(stored.json));
      // A message above the cap is answered at once and the client told to stop sending, or its
      // upload would stall on flow control until the idle timeout (120 s).
      const started = performance.now();
      const upload = session.request({
        ':method': 'POST',
        ':path': '/gatehouse.kv.v1.KvService/Set',
        'content-type': 'application/json',
        authorization: `Bearer ${own}`,
      });
      let status = 0;
      upload.on('response', (h) => {
        status = Number(h[':status']);
      });
      upload.on('data', () => undefined);
      upload.on('error', () => undefined);
      const closed = once(upload, 'close');
      upload.end(Buffer.alloc(12 * 1024 * 1024, 0x41));
      await Promise.race([
        closed,
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error('stream still open after 10 s')), 10_000).unref(),
        ),
      ]);
      assert.equal(status, 429);
      assert.equal(upload.rstCode, constants.NGHTTP2_NO_ERROR, 'told to stop uploading');
      assert.ok(performance.now() - started < 10_000);
      assert.equal((await readBack(capped.url, h2, own, 'largest')).length, value.length);
    } finally {
      session.close();
      await h2.close();
      await capped.close();
    }
  });

  void it('refuses a request above the payload cap before reading it, and the connection serves on', async () => {
    // 2 MiB against a 64 KiB value cap plus 1 MiB: refused from its content-length while the
    // body is still arriving. The session is then sent a PING, which a live client answers;
    // calls after the 2 s the PING allows are served.
    const capped = await startKvGateway({ kv: { limits: { maxValueSize: '64KiB' } } });
    const h2 = h2Agent(capped.ca);
    try {
      const cappedToken = await capped.token(['operator:orders']);
      const call = (method: string, body: unknown) =>
        postTo(capped.url, h2, cappedToken, method, JSON.stringify(body));
      const big = await call('Set', { namespace: 'orders', key: 'big', value: 'A'.repeat(2 * 1024 * 1024) });
      assert.equal(big.json?.['code'], 'resource_exhausted', JSON.stringify(big.json));
      // The cap through ConnectRPC is 4/3 of (64 KiB + 1 MiB): JSON carries bytes as base64.
      assert.match(String(big.json?.['message']), /larger than configured readMaxBytes 1485484/);
      // The same stable code as the direct gRPC path's, and an errorId.
      assert.equal(big.headers.get('gatehouse-error-code'), 'GW_ERR_KV_PAYLOAD_TOO_LARGE');
      assert.match(String(big.headers.get('gatehouse-error-id')), /^[0-9a-f-]{36}$/);
      // gRPC-Web text mode: base64 again on top, so its cap is 4/3 of that; a body above it is the
      // same refusal, not a malformed message.
      const text = await fetch(`${capped.url}/gatehouse.kv.v1.KvService/Set`, {
        method: 'POST',
        body: 'A'.repeat(2 * 1024 * 1024),
        headers: {
          'content-type': 'application/grpc-web-text',
          'x-grpc-web': '1',
          authorization: `Bearer ${cappedToken}`,
        },
        dispatcher: h2,
      });
      await text.arrayBuffer();
      assert.equal(text.headers.get('grpc-status'), '8');
      assert.match(decodeURIComponent(text.headers.get('grpc-message') ?? ''), /larger than 1980652 bytes/);
      assert.equal(text.headers.get('gatehouse-error-code'), 'GW_ERR_KV_PAYLOAD_TOO_LARGE');
      await new Promise((r) => setTimeout(r, 2500));
      const next = await call('Get', { namespace: 'orders', key: 'big' });
      assert.equal(next.status, 200, JSON.stringify(next.json));
      assert.deepEqual(next.json, {});
    } finally {
      await h2.close();
      await capped.close();
    }
  });

  void it('applies a reloaded value size to the message cap of every protocol', async () => {
    // The cap is the largest value plus 1 MiB: 1.5 MiB passes only once the value size is 2 MiB.
    const reloadable = await startKvGateway({ kv: { limits: { maxValueSize: '64KiB' } } });
    const h2 = h2Agent(reloadable.ca);
    const grpc = grpcClient(reloadable.url, reloadable.ca);
    try {
      const own = await reloadable.token(['operator:orders']);
      const value = Buffer.alloc(1536 * 1024, 5);
      const json = JSON.stringify({ namespace: 'orders', key: 'grown', value: value.toString('base64') });
      await expectStatus(
        grpc.call('Set', { namespace: 'orders', key: 'grown', value }, { authorization: `Bearer ${own}` }),
        8,
      );
      const refused = await postTo(reloadable.url, h2, own, 'Set', json);
      assert.equal(refused.json?.['code'], 'resource_exhausted', JSON.stringify(refused.json));
      reloadable.reloadKv({ limits: { maxValueSize: '2MiB' } });
      // The refusal above made the session prove it is alive; a new agent skips the wait.
      const fresh = h2Agent(reloadable.ca);
      try {
        const served = await postTo(reloadable.url, fresh, own, 'Set', json);
        assert.equal(served.status, 200, JSON.stringify(served.json));
      } finally {
        await fresh.close();
      }
      const again = grpcClient(reloadable.url, reloadable.ca);
      try {
        await again.call(
          'Set',
          { namespace: 'orders', key: 'grown', value },
          { authorization: `Bearer ${own}` },
        );
      } finally {
        again.close();
      }
    } finally {
      grpc.close();
      await h2.close();
      await reloadable.close();
    }
  });

  void it('serves gRPC-Web clients on the same listener', async () => {
    const client = createClient(
      KvService,
      createGrpcWebTransport({ baseUrl: gw.url, httpVersion: '2', nodeOptions: { ca: gw.ca } }),
    );
    const headers = { authorization: `Bearer ${token}` };
    const set = await client.set({ namespace: 'orders', key: 'web', value: Buffer.from('w') }, { headers });
    const got = await client.get({ namespace: 'orders', key: 'web' }, { headers });
    assert.equal(got.entry?.version, set.version);
    await assert.rejects(client.get({ namespace: 'orders', key: 'web' }), (e: unknown) => {
      return e instanceof ConnectError && e.code === Code.Unauthenticated;
    });
  });

  void it('refuses every method without valid credentials over Connect JSON, Connect binary and gRPC-Web', async () => {
    const transports = {
      'Connect binary': createConnectTransport({
        baseUrl: gw.url,
        httpVersion: '2',
        useBinaryFormat: true,
        nodeOptions: { ca: gw.ca },
      }),
      'gRPC-Web': createGrpcWebTransport({ baseUrl: gw.url, httpVersion: '2', nodeOptions: { ca: gw.ca } }),
    };
    const attempts: Record<string, string>[] = [
      {},
      { authorization: 'Bearer not-a-token' },
      { authorization: `Bearer ${token.slice(0, -4)}AAAA` },
      { 'x-api-key': 'gh_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
    ];
    for (const method of METHODS) {
      const request = sampleRequest(method, 'orders');
      // The JSON mapping of the same request: bytes as base64.
      const json = JSON.stringify(request, (_, v: unknown) =>
        v !== null && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer'
          ? Buffer.from((v as { data: number[] }).data).toString('base64')
          : v,
      );
      for (const headers of attempts) {
        const answer = await postTo(gw.url, agent, '', method, json, { authorization: '', ...headers });
        assert.equal(answer.json?.['code'], 'unauthenticated', `${method} ${JSON.stringify(answer.json)}`);
        assert.equal(answer.status, 401);
        for (const [name, transport] of Object.entries(transports)) {
          const client = createClient(KvService, transport) as unknown as Record<
            string,
            (r: unknown, o: { headers: Record<string, string> }) => Promise<unknown>
          >;
          const call = client[method.charAt(0).toLowerCase() + method.slice(1)];
          assert.ok(call !== undefined, method);
          await assert.rejects(
            call(request, { headers }),
            (e: unknown) => e instanceof ConnectError && e.code === Code.Unauthenticated,
            `${name} ${method}`,
          );
        }
      }
    }
  });

  void it('answers errors with a code, a generic message and an errorId', async () => {
    const anonymous = await post('Get', '{"namespace":"orders","key":"j"}', { authorization: '' });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.json?.['code'], 'unauthenticated');
    assert.match(String(anonymous.headers.get('gatehouse-error-id')), /^[0-9a-f-]{36}$/);
    const unknownMethod = await post('Drop', '{}');
    assert.equal(unknownMethod.status, 404);
    assert.equal(unknownMethod.headers.get('gatehouse-error-code'), 'GW_ERR_KV_UNIMPLEMENTED');
    assert.match(String(unknownMethod.headers.get('gatehouse-error-id')), /^[0-9a-f-]{36}$/);
    const malformed = await post('Get', '{"namespace": ');
    assert.equal(malformed.json?.['code'], 'invalid_argument');
    assert.equal(malformed.headers.get('gatehouse-error-code'), 'GW_ERR_KV_MESSAGE_MALFORMED');
    assert.match(String(malformed.headers.get('gatehouse-error-id')), /^[0-9a-f-]{36}$/);
    const unknownField = await post('Get', '{"namespace":"orders","key":"j","sql":"DROP TABLE"}');
    assert.equal(unknownField.json?.['code'], 'invalid_argument');
    const wrongType = await post('Set', '{"namespace":"orders","key":"j","ttlSeconds":"forever"}');
    assert.equal(wrongType.json?.['code'], 'invalid_argument');
    const loneSurrogate = await post('Get', '{"namespace":"orders","key":"\\ud800"}');
    assert.equal(loneSurrogate.json?.['code'], 'invalid_argument');
  });

  void it('gives a refusal for an unsupported content type or HTTP method its code and errorId', async () => {
    const textPlain = await post('Get', '{}', { 'content-type': 'text/plain' });
    assert.equal(textPlain.status, 415);
    assert.equal(textPlain.headers.get('gatehouse-error-code'), 'GW_ERR_KV_UNIMPLEMENTED');
    assert.match(String(textPlain.headers.get('gatehouse-error-id')), /^[0-9a-f-]{36}$/);
    const query = 'connect=v1&encoding=json&message=%7B%7D';
    const res = await fetch(`${gw.url}/gatehouse.kv.v1.KvService/Get?${query}`, {
      headers: { authorization: `Bearer ${token}` },
      dispatcher: agent,
    });
    await res.arrayBuffer();
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('gatehouse-error-code'), 'GW_ERR_KV_UNIMPLEMENTED');
    assert.match(String(res.headers.get('gatehouse-error-id')), /^[0-9a-f-]{36}$/);
  });

  void it('answers every fuzzed field of every method with a defined status, never a crash', async () => {
    const field = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 1100 }),
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.string(), { maxLength: 3 }),
      fc.base64String({ maxLength: 64 }),
      fc.json(),
    );
    const body = fc.record(
      {
        namespace: fc.oneof(fc.constant('orders'), fc.string({ maxLength: 70 })),
        key: field,
        value: field,
        keys: fc.array(field, { maxLength: 4 }),
        items: fc.array(fc.record({ key: field, value: field, ttlSeconds: field, metadata: field }), {
          maxLength: 3,
        }),
        ttlSeconds: field,
        expectedVersion: field,
        metadata: field,
        prefix: field,
        pageSize: field,
        pageToken: field,
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...METHODS), body, async (method, message) => {
        const res = await post(method, JSON.stringify(message));
        if (res.status === 200) return;
        assert.ok(CONNECT_CODES.has(String(res.json?.['code'])), `${res.status} ${JSON.stringify(res.json)}`);
        assert.doesNotMatch(JSON.stringify(res.json), /stack|at .*\.ts|SQL|ECONN/i);
      }),
      { numRuns: 150 },
    );
    // Still serving.
    assert.equal((await post('Get', '{"namespace":"orders","key":"j"}')).status, 200);
  });
});
