import assert from 'node:assert/strict';
import { type ClientHttp2Session, connect, constants, type IncomingHttpHeaders } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  GetResponseSchema,
  SetRequestSchema,
  SetResponseSchema,
  GetRequestSchema,
} from '#gen/gatehouse/kv/v1/kv_pb.ts';
import { encodeGrpcMessage, parseGrpcTimeout } from '../../../src/doors/kv/grpc-direct.ts';
import { type Blackhole, type KvGateway, startBlackhole, startKvGateway } from './harness.ts';

const SERVICE = '/gatehouse.kv.v1.KvService';

const jsonBytes = (body: unknown) => Buffer.from(JSON.stringify(body));
/** Lines of a server log that report a failed call (logged at error level). */
const failedCalls = (logs: string) => logs.split('\n').filter((l) => l.includes('kv call failed')).length;

interface Answer {
  readonly headers: IncomingHttpHeaders;
  readonly trailers: IncomingHttpHeaders | undefined;
  readonly data: Buffer;
  /** grpc-status from the trailers, or from the headers of a trailers-only answer. */
  readonly status: string | undefined;
  readonly message: string;
  /** RST_STREAM code seen by the client (0 when the stream closed normally). */
  readonly rstCode: number;
}

function frame(body: Uint8Array, flags = 0, length = body.length): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(flags, 0);
  head.writeUInt32BE(length, 1);
  return Buffer.concat([head, body]);
}

void describe('kv direct gRPC path (application/grpc on node:http2)', () => {
  let gw: KvGateway;
  let session: ClientHttp2Session;
  let token: string;
  let blackhole: Blackhole;

  /** One raw call. */
  const call = (path: string, body: Buffer, headers: Record<string, string> = {}): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const stream = session.request({
        [constants.HTTP2_HEADER_METHOD]: 'POST',
        [constants.HTTP2_HEADER_PATH]: path,
        'content-type': 'application/grpc',
        te: 'trailers',
        authorization: `Bearer ${token}`,
        ...headers,
      });
      let answerHeaders: IncomingHttpHeaders = {};
      let trailers: IncomingHttpHeaders | undefined;
      const chunks: Buffer[] = [];
      stream.on('response', (h) => {
        answerHeaders = h;
      });
      stream.on('trailers', (t) => {
        trailers = t;
      });
      stream.on('data', (d: Buffer) => chunks.push(d));
      stream.on('error', reject);
      stream.on('close', () => {
        const source = trailers ?? answerHeaders;
        resolve({
          headers: answerHeaders,
          trailers,
          data: Buffer.concat(chunks),
          status: source['grpc-status'] as string | undefined,
          message: decodeURIComponent((source['grpc-message'] as string | undefined) ?? ''),
          rstCode: stream.rstCode ?? 0,
        });
      });
      stream.end(body);
    });
  const setFrame = (namespace: string, key: string, value: string) =>
    frame(
      toBinary(SetRequestSchema, create(SetRequestSchema, { namespace, key, value: Buffer.from(value) })),
    );
  const getFrame = (namespace: string, key: string) =>
    frame(toBinary(GetRequestSchema, create(GetRequestSchema, { namespace, key })));

  before(async () => {
    // A backend that accepts and never answers: the call waits for its deadline.
    blackhole = await startBlackhole();
    const hole = blackhole.port;
    gw = await startKvGateway({
      kv: {
        drivers: {
          embedded: { type: 'memory' },
          slow: { type: 'redis', url: `redis://127.0.0.1:${hole}`, timeout: '5s' },
        },
        namespaces: { slow: 'slow' },
        limits: { maxValueSize: '4KiB' },
      },
    });
    token = await gw.token(['operator:orders', 'operator:slow']);
    session = connect(gw.url, { ca: gw.ca, servername: 'localhost' });
  });
  after(async () => {
    session?.close();
    await gw?.close();
    await blackhole?.close();
  });

  void it('answers a call with one message, the content type it was asked in, and grpc-status 0 in the trailers', async () => {
    const set = await call(`${SERVICE}/Set`, setFrame('orders', 'a', 'hello'), {
      'content-type': 'application/grpc+proto',
    });
    assert.equal(set.status, '0');
    assert.equal(set.headers[':status'], 200);
    assert.equal(set.headers['content-type'], 'application/grpc+proto');
    assert.equal(set.headers['grpc-status'], undefined, 'the status is in the trailers');
    assert.ok(Number(set.headers['ratelimit-limit']) > 0, 'quota headers');
    assert.equal(set.data.readUInt32BE(1), set.data.length - 5);
    const version = fromBinary(SetResponseSchema, set.data.subarray(5)).version;
    assert.ok(version > 0n);
    const get = await call(`${SERVICE}/Get`, getFrame('orders', 'a'));
    assert.equal(get.status, '0');
    assert.equal(get.headers['content-type'], 'application/grpc');
    const answer = fromBinary(GetResponseSchema, get.data.subarray(5));
    assert.equal(answer.found, true);
    assert.equal(Buffer.from(answer.entry?.value ?? []).toString(), 'hello');
    assert.equal(answer.entry?.version, version);
    // A parameter on the media type is still gRPC; the answer names the media type alone.
    const withCharset = await call(`${SERVICE}/Get`, getFrame('orders', 'a'), {
      'content-type': 'application/grpc+proto; charset=utf-8',
    });
    assert.equal(withCharset.status, '0');
    assert.equal(withCharset.headers['content-type'], 'application/grpc+proto');
  });

  void it('maps method errors to a trailers-only answer with the code, the errorId and no internal detail', async () => {
    const saved = token;
    token = 'not-a-jwt';
    const unauthenticated = await call(`${SERVICE}/Get`, getFrame('orders', 'a'));
    token = saved;
    assert.equal(unauthenticated.status, '16');
    assert.equal(unauthenticated.trailers, undefined, 'trailers-only');
    assert.equal(unauthenticated.data.length, 0);
    assert.match(String(unauthenticated.headers['gatehouse-error-code']), /^GW_ERR_AUTH_/);
    assert.match(String(unauthenticated.headers['gatehouse-error-id']), /^[0-9a-f-]{36}$/);
    const denied = await call(`${SERVICE}/Get`, getFrame('payments', 'a'));
    assert.equal(denied.status, '7');
    assert.equal(denied.headers['gatehouse-error-code'], 'GW_ERR_RBAC_DENIED');
    // The message is percent-encoded on the wire as gRPC does it: printable ASCII but `%` as is.
    const bad = await call(`${SERVICE}/Get`, getFrame('orders', 'é\u0000'));
    assert.equal(bad.status, '3');
    assert.match(String(bad.headers['grpc-message']), /^[\x20-\x7e]*$/, 'only printable ASCII on the wire');
    assert.equal(String(bad.headers['grpc-message']), 'Invalid "key": must not contain NUL');
    assert.match(bad.message, /"key"/);
  });

  void it('refuses unknown methods, compressed messages and unsupported encodings', async () => {
    const unknown = await call(`${SERVICE}/Drop`, getFrame('orders', 'a'));
    assert.equal(unknown.headers[':status'], 200);
    assert.equal(unknown.status, '12');
    const otherService = await call('/grpc.health.v1.Health/Check', frame(new Uint8Array(0)));
    assert.equal(otherService.status, '12');
    const gzip = await call(`${SERVICE}/Get`, getFrame('orders', 'a'), { 'grpc-encoding': 'gzip' });
    assert.equal(gzip.status, '12');
    assert.equal(gzip.headers['grpc-accept-encoding'], 'identity');
    const identity = await call(`${SERVICE}/Get`, getFrame('orders', 'a'), { 'grpc-encoding': 'identity' });
    assert.equal(identity.status, '0');
    const flagged = await call(`${SERVICE}/Get`, frame(getFrame('orders', 'a').subarray(5), 1));
    assert.equal(flagged.status, '3');
    assert.match(flagged.message, /Compressed/);
    const strange = await call(`${SERVICE}/Get`, frame(getFrame('orders', 'a').subarray(5), 0x80));
    assert.equal(strange.status, '3');
    const badTimeout = await call(`${SERVICE}/Get`, getFrame('orders', 'a'), { 'grpc-timeout': '5 seconds' });
    assert.equal(badTimeout.status, '3');
    // Each refusal has its stable code and an errorId, as the methods' own errors do.
    for (const [answer, code] of [
      [unknown, 'GW_ERR_KV_UNIMPLEMENTED'],
      [gzip, 'GW_ERR_KV_UNIMPLEMENTED'],
      [flagged, 'GW_ERR_KV_MESSAGE_MALFORMED'],
      [strange, 'GW_ERR_KV_MESSAGE_MALFORMED'],
      [badTimeout, 'GW_ERR_KV_MESSAGE_MALFORMED'],
    ] as const) {
      assert.equal(answer.headers['gatehouse-error-code'], code, answer.message);
      assert.match(String(answer.headers['gatehouse-error-id']), /^[0-9a-f-]{36}$/);
    }
  });

  void it('refuses missing, truncated, doubled and undecodable messages with INVALID_ARGUMENT', async () => {
    const empty = await call(`${SERVICE}/Get`, Buffer.alloc(0));
    assert.equal(empty.status, '3');
    const head = await call(`${SERVICE}/Get`, Buffer.from([0, 0, 0]));
    assert.equal(head.status, '3');
    const message = getFrame('orders', 'a');
    const cut = await call(`${SERVICE}/Get`, message.subarray(0, message.length - 2));
    assert.equal(cut.status, '3');
    assert.match(cut.message, /truncated/);
    const twice = await call(`${SERVICE}/Get`, Buffer.concat([message, message]));
    assert.equal(twice.status, '3');
    assert.match(twice.message, /More than one message/);
    // Field 1 (namespace) with wire type 2 and a length past the end of the message.
    const garbage = await call(`${SERVICE}/Get`, frame(Buffer.from([0x0a, 0x7f, 0x61])));
    assert.equal(garbage.status, '3');
    assert.match(garbage.message, /not a valid protobuf/);
    for (const answer of [empty, head, cut, twice, garbage]) {
      assert.equal(answer.headers['gatehouse-error-code'], 'GW_ERR_KV_MESSAGE_MALFORMED', answer.message);
      assert.match(String(answer.headers['gatehouse-error-id']), /^[0-9a-f-]{36}$/);
    }
  });

  void it('refuses an oversized message from its length prefix, without waiting for the body', async () => {
    // The client announces 64 MiB, sends 16 bytes and keeps the stream open: the answer comes anyway.
    const started = performance.now();
    const huge = await new Promise<Answer>((resolve, reject) => {
      const stream = session.request({
        [constants.HTTP2_HEADER_METHOD]: 'POST',
        [constants.HTTP2_HEADER_PATH]: `${SERVICE}/Set`,
        'content-type': 'application/grpc',
        authorization: `Bearer ${token}`,
      });
      let headers: IncomingHttpHeaders = {};
      stream.on('response', (h) => {
        headers = h;
      });
      stream.on('error', reject);
      stream.on('close', () =>
        resolve({
          headers,
          trailers: undefined,
          data: Buffer.alloc(0),
          status: headers['grpc-status'] as string | undefined,
          message: decodeURIComponent(String(headers['grpc-message'] ?? '')),
          rstCode: stream.rstCode ?? 0,
        }),
      );
      stream.write(frame(Buffer.alloc(16), 0, 64 * 1024 * 1024));
    });
    assert.equal(huge.status, '8');
    assert.match(huge.message, /exceeds the limit/);
    assert.equal(huge.headers['gatehouse-error-code'], 'GW_ERR_KV_PAYLOAD_TOO_LARGE');
    assert.equal(huge.rstCode, constants.NGHTTP2_NO_ERROR, 'told to stop uploading');
    assert.ok(performance.now() - started < 2000);
  });

  void it('honours grpc-timeout: DEADLINE_EXCEEDED long before the driver deadline, and the connection stays usable', async () => {
    const started = performance.now();
    const slow = await call(`${SERVICE}/Get`, getFrame('slow', 'a'), { 'grpc-timeout': '300m' });
    const elapsed = performance.now() - started;
    assert.equal(slow.status, '4');
    assert.ok(elapsed >= 250 && elapsed < 3000, `answered after ${elapsed.toFixed(0)} ms`);
    const malformed = await call(`${SERVICE}/Get`, getFrame('orders', 'a'), { 'grpc-timeout': '10 seconds' });
    assert.equal(malformed.status, '3');
    const fine = await call(`${SERVICE}/Get`, getFrame('orders', 'a'), { 'grpc-timeout': '5S' });
    assert.equal(fine.status, '0');
  });

  void it('stops the backend call of a call whose deadline passed or that was cancelled while it authenticated', async () => {
    // The key set fetch of a first token is held, so the call ends while it authenticates; the
    // backend call it then starts must end at once, freeing its in-flight slot (the only one),
    // not run until the driver deadline (60 s), or without any deadline when the client's passed.
    for (const ending of ['deadline', 'cancel'] as const) {
      const own = await startKvGateway({
        kv: {
          drivers: {
            embedded: { type: 'memory' },
            slow: { type: 'redis', url: `redis://127.0.0.1:${blackhole.port}`, timeout: '60s' },
          },
          namespaces: { slow: 'slow' },
          limits: { maxInFlight: 1 },
        },
      });
      const ownSession = connect(own.url, { ca: own.ca, servername: 'localhost' });
      try {
        const release = own.idp.hold();
        const authorization = `Bearer ${await own.token(['operator:orders', 'operator:slow'])}`;
        const request = (headers: Record<string, string> = {}) =>
          ownSession.request({
            [constants.HTTP2_HEADER_METHOD]: 'POST',
            [constants.HTTP2_HEADER_PATH]: `${SERVICE}/Get`,
            'content-type': 'application/grpc',
            te: 'trailers',
            authorization,
            ...headers,
          });
        const statusOf = (stream: ReturnType<typeof request>) =>
          new Promise<string | undefined>((resolve) => {
            let status: string | undefined;
            const read = (h: IncomingHttpHeaders) => {
              status = (h['grpc-status'] as string | undefined) ?? status;
            };
            stream.on('response', read);
            stream.on('trailers', read);
            stream.on('error', () => undefined);
            stream.resume();
            stream.on('close', () => resolve(status));
          });
        const stuck = request(ending === 'deadline' ? { 'grpc-timeout': '200m' } : {});
        const ended = statusOf(stuck);
        stuck.end(getFrame('slow', 'a'));
        if (ending === 'cancel') {
          while (own.idp.fetches() === 0) await new Promise((r) => setTimeout(r, 10));
          stuck.close(constants.NGHTTP2_CANCEL);
        }
        assert.equal(await ended, ending === 'deadline' ? '4' : undefined);
        release();
        let status: string | undefined;
        for (let i = 0; i < 60 && status !== '0'; i += 1) {
          if (i > 0) await new Promise((r) => setTimeout(r, 50));
          const next = request();
          const answered = statusOf(next);
          next.end(getFrame('orders', 'a'));
          status = await answered;
        }
        assert.equal(status, '0', `${ending}: the in-flight slot is still held after 3 s`);
      } finally {
        ownSession.close();
        await own.close();
      }
    }
  });

  void it('answers a client deadline on every protocol with DEADLINE_EXCEEDED, logged as no backend failure', async () => {
    const connectJson = (headers: Record<string, string>) =>
      new Promise<{ status: number; body: Record<string, unknown>; code: string | undefined }>(
        (resolve, reject) => {
          const stream = session.request({
            [constants.HTTP2_HEADER_METHOD]: 'POST',
            [constants.HTTP2_HEADER_PATH]: `${SERVICE}/Set`,
            'content-type': 'application/json',
            authorization: `Bearer ${token}`,
            ...headers,
          });
          let status = 0;
          let code: string | undefined;
          const chunks: Buffer[] = [];
          stream.on('response', (h) => {
            status = Number(h[':status']);
            code = h['gatehouse-error-code'] as string | undefined;
          });
          stream.on('data', (d: Buffer) => chunks.push(d));
          stream.on('error', reject);
          stream.on('close', () =>
            resolve({ status, code, body: JSON.parse(Buffer.concat(chunks).toString() || '{}') }),
          );
          stream.end(jsonBytes({ namespace: 'slow', key: 'd', value: 'aGk=' }));
        },
      );
    const logged = failedCalls(gw.logs());
    const [grpcJson, viaConnect] = await Promise.all([
      call(`${SERVICE}/Get`, frame(jsonBytes({ namespace: 'slow', key: 'a' })), {
        'content-type': 'application/grpc+json',
        'grpc-timeout': '300m',
      }),
      connectJson({ 'connect-timeout-ms': '300' }),
    ]);
    assert.equal(grpcJson.status, '4', grpcJson.message);
    assert.equal(
      (grpcJson.trailers ?? grpcJson.headers)['gatehouse-error-code'],
      'GW_ERR_KV_DEADLINE_EXCEEDED',
    );
    assert.equal(viaConnect.body['code'], 'deadline_exceeded', JSON.stringify(viaConnect.body));
    assert.equal(viaConnect.code, 'GW_ERR_KV_DEADLINE_EXCEEDED');
    assert.equal(
      failedCalls(gw.logs()),
      logged,
      'the client deadline is not logged as a failed backend call',
    );
  });

  void it('takes a deadline above 2^31-1 ms for none on every protocol (Node would fire its timer at once)', async () => {
    // The slow namespace hangs until its driver deadline (5 s): a deadline taken for 1 ms would
    // answer DEADLINE_EXCEEDED at once instead of UNAVAILABLE then.
    const started = performance.now();
    const [direct, grpcJson] = await Promise.all([
      call(`${SERVICE}/Get`, getFrame('slow', 'a'), { 'grpc-timeout': '99999999H' }),
      call(`${SERVICE}/Get`, frame(Buffer.from(JSON.stringify({ namespace: 'slow', key: 'a' }))), {
        'content-type': 'application/grpc+json',
        'grpc-timeout': '2592000S',
      }),
    ]);
    assert.equal(direct.status, '14', direct.message);
    assert.equal(grpcJson.status, '14', grpcJson.message);
    assert.ok(performance.now() - started > 4000, 'waited for the driver deadline');
    assert.equal(parseGrpcTimeout('99999999H'), 99_999_999 * 3_600_000);
  });

  void it('gives gRPC+JSON (through ConnectRPC) an oversized message its status in the trailers, then stops the upload', async () => {
    const started = performance.now();
    const huge = await call(`${SERVICE}/Set`, frame(Buffer.alloc(3 * 1024 * 1024, 0x41)), {
      'content-type': 'application/grpc+json',
    });
    assert.equal(huge.status, '8', huge.message);
    assert.equal((huge.trailers ?? huge.headers)['gatehouse-error-code'], 'GW_ERR_KV_PAYLOAD_TOO_LARGE');
    assert.equal(huge.rstCode, constants.NGHTTP2_NO_ERROR, 'told to stop uploading');
    assert.ok(performance.now() - started < 5000);
  });

  void it('leaves other content types and HTTP methods to ConnectRPC', async () => {
    // gRPC with JSON messages is not the direct path's; ConnectRPC serves it.
    const json = Buffer.from(JSON.stringify({ namespace: 'orders', key: 'a' }));
    const viaConnect = await call(`${SERVICE}/Get`, frame(json), { 'content-type': 'application/grpc+json' });
    assert.equal(viaConnect.status, '0');
    assert.equal(viaConnect.headers['content-type'], 'application/grpc+json');
    assert.match(viaConnect.data.subarray(5).toString(), /"found":true/);
    const plain = await call(`${SERVICE}/Get`, getFrame('orders', 'a'), { 'content-type': 'text/plain' });
    assert.equal(plain.headers[':status'], 415);
    const put = await call(`${SERVICE}/Get`, getFrame('orders', 'a'), { ':method': 'PUT' });
    assert.equal(put.headers[':status'], 405);
  });

  void it('answers the same statuses and error codes as the Connect path (gRPC-Web) for the same calls', async () => {
    /** Status and error code of an answer, from its headers or from a gRPC-Web trailer frame. */
    const outcome = (a: Answer) => {
      const fromHeaders = {
        status: a.headers['grpc-status'] as string | undefined,
        code: a.headers['gatehouse-error-code'] as string | undefined,
      };
      if (fromHeaders.status !== undefined) return fromHeaders;
      const trailers = a.trailers ?? {};
      if (trailers['grpc-status'] !== undefined) {
        return {
          status: trailers['grpc-status'] as string,
          code: trailers['gatehouse-error-code'] as string | undefined,
        };
      }
      // gRPC-Web: the last frame of the body (flag 0x80) carries the trailers as text.
      const text = a.data.toString('latin1');
      return {
        status: /grpc-status: ?(\d+)/i.exec(text)?.[1],
        code: /gatehouse-error-code: ?(\S+)/i.exec(text)?.[1],
      };
    };
    const cases: [string, Buffer][] = [
      ['Get', getFrame('orders', 'a')],
      ['Get', getFrame('payments', 'a')],
      ['Get', getFrame('Bad_Namespace', 'a')],
      ['Get', getFrame('orders', 'x\u0000')],
      ['Set', setFrame('orders', 'big', 'v'.repeat(5000))],
      // Field 1 with a length past the end: ConnectRPC refuses it before any method, as this path does.
      ['Get', frame(Buffer.from([0x0a, 0x7f, 0x61]))],
    ];
    for (const [method, body] of cases) {
      const direct = outcome(await call(`${SERVICE}/${method}`, body));
      const web = outcome(
        await call(`${SERVICE}/${method}`, body, { 'content-type': 'application/grpc-web+proto' }),
      );
      assert.deepEqual(direct, web, `${method} ${body.toString('latin1').slice(5, 40)}`);
    }
  });

  void it('opens flow-control windows of 1 MiB per stream and 8 MiB per connection to clients', async () => {
    const s = connect(gw.url, { ca: gw.ca, servername: 'localhost' });
    try {
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.once('remoteSettings', () => resolve());
      });
      assert.equal(s.remoteSettings.initialWindowSize, 1024 * 1024);
      // The connection window arrives as a WINDOW_UPDATE right after the settings.
      for (let i = 0; i < 50 && (s.state.remoteWindowSize ?? 0) < 8 * 1024 * 1024; i += 1) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(s.state.remoteWindowSize, 8 * 1024 * 1024);
    } finally {
      s.close();
    }
  });

  void it('percent-encodes grpc-message as the gRPC protocol does, and nothing more', () => {
    assert.equal(encodeGrpcMessage('keys: a/b "c" 100%'), 'keys: a/b "c" 100%25');
    assert.equal(encodeGrpcMessage('ü\n\t~'), '%C3%BC%0A%09~');
    assert.equal(decodeURIComponent(encodeGrpcMessage('key "ä€" at 5% / 9:')), 'key "ä€" at 5% / 9:');
  });

  void it('parses grpc-timeout values of every unit', () => {
    assert.equal(parseGrpcTimeout(undefined), undefined);
    assert.equal(parseGrpcTimeout('1H'), 3_600_000);
    assert.equal(parseGrpcTimeout('2M'), 120_000);
    assert.equal(parseGrpcTimeout('3S'), 3000);
    assert.equal(parseGrpcTimeout('40m'), 40);
    assert.equal(parseGrpcTimeout('5000u'), 5);
    assert.equal(parseGrpcTimeout('7000000n'), 7);
    for (const bad of ['', '5', 'S', '123456789S', '-1S', '1.5S', '1s ', '1x']) {
      assert.ok(Number.isNaN(parseGrpcTimeout(bad)), bad);
    }
  });
});
