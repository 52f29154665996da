import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { connect, constants } from 'node:http2';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { testServices } from '#core/config';
import { FLAG, FRAME, frame, PREFACE, settingsFrame } from '../../../src/doors/edge/l7/h2/frames.ts';
import { HpackEncoder } from '../../../src/doors/edge/l7/h2/hpack.ts';
import { expectStatus, grpcClient, type GrpcError } from './grpc-client.ts';
import { type Blackhole, type KvGateway, startBlackhole, startKvGateway } from './harness.ts';

const RESOURCE_EXHAUSTED = 8;

/** The promise's value, or a failure naming what did not happen within `ms`. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} in ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
const { redisUrl, requireServices } = testServices();

/**
 * A Get call's request headers, for HpackEncoder (names at even indexes): gRPC by default,
 * another protocol with `contentType` and its extra headers.
 */
const getHeaders = (contentType = 'application/grpc', ...extra: string[]) => [
  ':method',
  'POST',
  ':scheme',
  'https',
  ':authority',
  'localhost',
  ':path',
  '/gatehouse.kv.v1.KvService/Get',
  'content-type',
  contentType,
  ...extra,
];

/**
 * A hand-written HTTP/2 client over TLS: it sends the preface, an empty SETTINGS and `frames`,
 * then reads nothing and answers nothing (no SETTINGS ACK, no PING ACK) while its connection
 * stays open.
 */
async function silentClient(gateway: KvGateway, frames: readonly Buffer[]): Promise<TLSSocket> {
  const socket = tlsConnect({
    host: '127.0.0.1',
    port: Number(new URL(gateway.url).port),
    ca: gateway.ca,
    servername: 'localhost',
    ALPNProtocols: ['h2'],
  });
  socket.on('error', () => undefined);
  await once(socket, 'secureConnect');
  assert.equal(socket.alpnProtocol, 'h2');
  socket.write(Buffer.concat([PREFACE, settingsFrame([]), ...frames]));
  socket.pause();
  return socket;
}

/** Resolves once the gateway has closed `socket` (read from now on), within `ms`. */
async function closedBy(socket: TLSSocket, ms: number): Promise<void> {
  socket.resume();
  if (!socket.destroyed) await within(ms, 'the silent connection was not closed', once(socket, 'close'));
}

/**
 * Sends a 60 KiB Set every 100 ms until one is served, at most `attempts` times: whether one
 * was, and the last refusal (undefined when the first was served).
 */
async function setUntilServed(
  c: ReturnType<typeof grpcClient>,
  auth: Record<string, string>,
  key: string,
  attempts: number,
): Promise<{ served: boolean; lastError: unknown }> {
  let lastError: unknown;
  for (let i = 0; i < attempts; i += 1) {
    try {
      await c.call('Set', { namespace: 'orders', key, value: Buffer.alloc(60 * 1024) }, auth);
      return { served: true, lastError };
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { served: false, lastError };
}

/** The gRPC prefix of a message announced as `length` bytes (flags 0). */
function messagePrefix(length: number): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(length, 1);
  return head;
}

/**
 * Opens a gateway capped at 64 KiB values, sends `frames` from a silent client (a call the
 * gateway refuses while the client is still sending) and asserts that the connection is closed
 * for the unanswered PING: not at once, and well before the idle timeout (two minutes).
 */
async function closedForSilence(frames: readonly Buffer[]): Promise<void> {
  const capped = await startKvGateway({ kv: { limits: { maxValueSize: '64KiB' } } });
  const silent = await silentClient(capped, frames);
  try {
    const started = Date.now();
    await closedBy(silent, 8_000);
    assert.ok(Date.now() - started >= 1_000, 'closed for the unanswered PING, not at once');
  } finally {
    silent.destroy();
    await capped.close();
  }
}

void describe('kv limits and shedding', () => {
  let gw: KvGateway;
  let client: ReturnType<typeof grpcClient>;
  let blackhole: Blackhole;
  before(async () => {
    // A backend that accepts and never answers keeps calls in flight until the driver deadline.
    blackhole = await startBlackhole();
    const hole = blackhole.port;
    gw = await startKvGateway({
      kv: {
        drivers: {
          embedded: { type: 'memory' },
          slow: { type: 'redis', url: `redis://127.0.0.1:${hole}`, timeout: '2s' },
        },
        namespaces: { slow: 'slow' },
        limits: { maxValueSize: '4KiB', maxInFlight: 2, namespaceBandwidth: '16KiB' },
      },
    });
    client = grpcClient(gw.url, gw.ca);
  });
  after(async () => {
    client?.close();
    await gw?.close();
    await blackhole?.close();
  });
  const auth = async (ns: string) => ({ authorization: `Bearer ${await gw.token([`operator:${ns}`])}` });

  void it('refuses values above the configured size and messages above the payload cap', async () => {
    const a = await auth('orders');
    await client.call('Set', { namespace: 'orders', key: 'ok', value: Buffer.alloc(4096) }, a);
    const e = await expectStatus(
      client.call('Set', { namespace: 'orders', key: 'big', value: Buffer.alloc(4097) }, a),
      3,
    );
    assert.match(e.details, /"value"/);
    await expectStatus(
      client.call('Set', { namespace: 'orders', key: 'huge', value: Buffer.alloc(2 * 1024 * 1024) }, a),
      RESOURCE_EXHAUSTED,
    );
  });

  void it('charges metadata in UTF-8 bytes, and serves a request larger than the bucket once it is full', async () => {
    // 6000 euro signs: 18004 bytes with key and value (6004 characters), more than this
    // gateway's 16 KiB bucket ever holds. On a full bucket the call is served and empties it,
    // so the same call right after is refused; counted in characters, both would pass.
    const a = await auth('utf8meta');
    const set = () =>
      client.call(
        'Set',
        {
          namespace: 'utf8meta',
          key: 'k',
          value: Buffer.from('v'),
          metadata: JSON.stringify('\u20ac'.repeat(6000)),
        },
        a,
      );
    await set();
    const e = await expectStatus(set(), RESOURCE_EXHAUSTED);
    assert.equal(e.metadata.get('gatehouse-error-code')[0], 'GW_ERR_KV_BANDWIDTH_EXCEEDED');
  });

  void it('refuses a BatchGet whose values exceed what one answer may carry (maxValueSize in all)', async () => {
    // A namespace of its own: this gateway's bandwidth (16 KiB/s per namespace) is shared by the tests.
    const a = await auth('batchcap');
    const keys = ['bg-1', 'bg-2', 'bg-3'];
    for (const key of keys)
      await client.call('Set', { namespace: 'batchcap', key, value: Buffer.alloc(2000, 1) }, a);
    const e = await expectStatus(
      client.call('BatchGet', { namespace: 'batchcap', keys }, a),
      RESOURCE_EXHAUSTED,
    );
    assert.equal(e.metadata.get('gatehouse-error-code')[0], 'GW_ERR_KV_PAYLOAD_TOO_LARGE');
    assert.match(e.details, /^keys: the values found hold more than the 4096 bytes one answer may carry/);
    const one = await client.call<{ results: { found: boolean }[] }>(
      'BatchGet',
      { namespace: 'batchcap', keys: keys.slice(0, 1) },
      a,
    );
    assert.deepEqual(
      one.results.map((r) => r.found),
      [true],
    );
  });

  void it('sheds calls beyond the in-flight cap with RESOURCE_EXHAUSTED', async () => {
    const a = await auth('slow');
    const stuck = [
      client.call('Get', { namespace: 'slow', key: 'a' }, a).catch((e: GrpcError) => e.code),
      client.call('Get', { namespace: 'slow', key: 'b' }, a).catch((e: GrpcError) => e.code),
    ];
    // Wait until both are inside the guard (the driver histogram has not seen them yet).
    let shed: GrpcError | undefined;
    for (let i = 0; i < 50 && shed === undefined; i += 1) {
      shed = await client
        .call('Get', { namespace: 'orders', key: 'x' }, await auth('orders'))
        .then(() => undefined)
        .catch((e: GrpcError) => e);
      if (shed === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(shed?.code, RESOURCE_EXHAUSTED);
    assert.equal(shed?.metadata.get('gatehouse-error-code')[0], 'GW_ERR_OVERLOADED');
    assert.deepEqual(await Promise.all(stuck), [14, 14]);
  });

  void it('limits credential verifications per client address', async () => {
    const limitedGw = await startKvGateway({ kv: { limits: { authenticationsPerIp: 2 } } });
    const c = grpcClient(limitedGw.url, limitedGw.ca);
    try {
      const codes: number[] = [];
      for (let i = 0; i < 12; i += 1) {
        codes.push(
          await c
            .call('Get', { namespace: 'orders', key: 'k' }, { authorization: `Bearer forged-${i}` })
            .then(() => 0)
            .catch((e: GrpcError) => e.code),
        );
      }
      assert.deepEqual(codes.slice(0, 4), [16, 16, 16, 16], String(codes));
      assert.ok(codes.includes(RESOURCE_EXHAUSTED), String(codes));
      assert.ok(!codes.includes(0));
    } finally {
      c.close();
      await limitedGw.close();
    }
  });

  void it('applies reloaded rate limits to the next call', async () => {
    const reloadable = await startKvGateway();
    const c = grpcClient(reloadable.url, reloadable.ca);
    const a = { authorization: `Bearer ${await reloadable.token(['operator:orders'])}` };
    try {
      const before = await c.call('Get', { namespace: 'orders', key: 'k' }, a);
      assert.equal(before.headers.get('ratelimit-limit')[0], '2000');
      reloadable.reloadKv({ limits: { requestsPerSecond: 1, burst: 2 } });
      const codes: number[] = [];
      for (let i = 0; i < 5; i += 1) {
        codes.push(
          await c
            .call('Get', { namespace: 'orders', key: 'k' }, a)
            .then(() => 0)
            .catch((e: GrpcError) => e.code),
        );
      }
      assert.ok(codes.includes(RESOURCE_EXHAUSTED), String(codes));
    } finally {
      c.close();
      await reloadable.close();
    }
  });

  void it('serves a value stored before a reload lowered the size and bandwidth limits below it', async () => {
    // The answer is charged to the namespace's bandwidth after the fact; one larger than the
    // bucket holds used to fail as INTERNAL after the value was read.
    const reloadable = await startKvGateway({ kv: { limits: { maxValueSize: '64KiB' } } });
    const c = grpcClient(reloadable.url, reloadable.ca);
    const a = { authorization: `Bearer ${await reloadable.token(['operator:orders'])}` };
    try {
      await c.call('Set', { namespace: 'orders', key: 'old', value: Buffer.alloc(60_000, 2) }, a);
      reloadable.reloadKv({ limits: { maxValueSize: '4KiB', namespaceBandwidth: '8KiB' } });
      const got = await c.call<{ found: boolean; entry: { value: Uint8Array } }>(
        'Get',
        { namespace: 'orders', key: 'old' },
        a,
      );
      assert.equal(got.entry.value.length, 60_000);
    } finally {
      c.close();
      await reloadable.close();
    }
  });

  void it('charges a batch one request per key or item, and names a batch above the burst', async () => {
    const batched = await startKvGateway({ kv: { limits: { requestsPerSecond: 1, burst: 10 } } });
    const c = grpcClient(batched.url, batched.ca);
    const a = { authorization: `Bearer ${await batched.token(['operator:orders'])}` };
    try {
      const keys = ['a', 'b', 'c', 'd', 'e', 'f'];
      const first = await c.call('BatchGet', { namespace: 'orders', keys }, a);
      assert.equal(first.headers.get('ratelimit-remaining')[0], '4');
      // Four tokens left: a batch of six is refused whole, a batch of three passes.
      const refused = await expectStatus(
        c.call('BatchGet', { namespace: 'orders', keys }, a),
        RESOURCE_EXHAUSTED,
      );
      assert.ok(Number(refused.metadata.get('retry-after')[0]) >= 1);
      const items = ['x', 'y', 'z'].map((key) => ({ key, value: Buffer.from(key) }));
      const set = await c.call('BatchSet', { namespace: 'orders', items }, a);
      assert.equal(set.headers.get('ratelimit-remaining')[0], '1');
      // More items than the bucket can ever hold: refused by name, not left to wait forever.
      const many = Array.from({ length: 11 }, (_, i) => `k${i}`);
      const tooBig = await expectStatus(c.call('BatchGet', { namespace: 'orders', keys: many }, a), 3);
      assert.match(tooBig.details, /keys: a batch of 11 exceeds the per-client burst of 10/);
      const tooMany = Array.from({ length: 11 }, (_, i) => ({ key: `k${i}`, value: Buffer.from('v') }));
      const tooBigSet = await expectStatus(c.call('BatchSet', { namespace: 'orders', items: tooMany }, a), 3);
      assert.match(tooBigSet.details, /items: a batch of 11/);
    } finally {
      c.close();
      await batched.close();
    }
  });

  void it('charges calls refused for their namespace or permissions, and tells the quota left', async () => {
    const strict = await startKvGateway({ kv: { limits: { requestsPerSecond: 1, burst: 4 } } });
    const c = grpcClient(strict.url, strict.ca);
    // A reader of "orders" writing there, reading a namespace it has no binding on, and naming
    // a malformed namespace: each refusal is charged one request and says what is left.
    const a = { authorization: `Bearer ${await strict.token(['reader:orders'])}` };
    try {
      const writing = await expectStatus(
        c.call('Set', { namespace: 'orders', key: 'k', value: Buffer.from('v') }, a),
        7,
      );
      assert.equal(writing.metadata.get('ratelimit-limit')[0], '4');
      assert.equal(writing.metadata.get('ratelimit-remaining')[0], '3');
      const malformed = await expectStatus(c.call('Get', { namespace: 'Bad_NS', key: 'k' }, a), 3);
      assert.ok(Number(malformed.metadata.get('ratelimit-remaining')[0]) <= 3);
      // Refusals alone empty the bucket (one token a second comes back): uncharged, they
      // would be PERMISSION_DENIED forever.
      const codes: number[] = [];
      let limited: GrpcError | undefined;
      for (let i = 0; i < 10 && limited === undefined; i += 1) {
        const e = await c.call('Get', { namespace: 'billing', key: 'k' }, a).then(
          () => assert.fail('a reader of orders read billing'),
          (error: GrpcError) => error,
        );
        codes.push(e.code);
        if (e.code === RESOURCE_EXHAUSTED) limited = e;
      }
      assert.equal(limited?.metadata.get('gatehouse-error-code')[0], 'GW_ERR_RATE_LIMITED', String(codes));
      assert.equal(limited?.metadata.get('ratelimit-remaining')[0], '0');
      assert.ok(
        codes.slice(0, -1).every((code) => code === 7),
        String(codes),
      );
    } finally {
      c.close();
      await strict.close();
    }
  });

  void it('resets streams beyond the request bytes one client address may hold, and frees them on close', async () => {
    // 2 MiB per address; the largest message is 64 KiB + 1 MiB, below that.
    const capped = await startKvGateway({
      kv: { limits: { maxValueSize: '64KiB', bufferedBytesPerIp: '2MiB' } },
    });
    const session = connect(capped.url, { ca: capped.ca, servername: 'localhost' });
    try {
      await new Promise<void>((resolve, reject) => {
        session.once('connect', () => resolve());
        session.once('error', reject);
      });
      // No credentials: five calls each announce a 1 MiB message and send 700 KiB of it.
      const head = messagePrefix(1024 * 1024);
      const body = Buffer.alloc(700 * 1024);
      const streams = Array.from({ length: 5 }, () => {
        const stream = session.request({
          [constants.HTTP2_HEADER_METHOD]: 'POST',
          [constants.HTTP2_HEADER_PATH]: '/gatehouse.kv.v1.KvService/Set',
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        stream.on('error', () => undefined);
        stream.write(Buffer.concat([head, body]));
        return new Promise<number>((resolve) => stream.once('close', () => resolve(stream.rstCode ?? 0)));
      });
      // 5 × 700 KiB exceed 2 MiB: the first stream to close is one the gateway reset.
      const first = await within(15_000, 'no stream was reset', Promise.race(streams));
      assert.equal(first, constants.NGHTTP2_ENHANCE_YOUR_CALM);
      session.destroy();
      // Streams that send only HEADERS are charged too: 256 open streams with an 8 KiB header.
      const headersOnly = connect(capped.url, { ca: capped.ca, servername: 'localhost' });
      try {
        const pad = 'p'.repeat(8 * 1024);
        const streams = Array.from({ length: 256 }, () => {
          const stream = headersOnly.request(
            {
              [constants.HTTP2_HEADER_METHOD]: 'POST',
              [constants.HTTP2_HEADER_PATH]: '/gatehouse.kv.v1.KvService/Get',
              'content-type': 'application/grpc',
              'x-pad': pad,
            },
            { endStream: false },
          );
          stream.on('error', () => undefined);
          return stream;
        });
        const opened = streams.map(
          (stream) =>
            new Promise<number>((resolve) => stream.once('close', () => resolve(stream.rstCode ?? 0))),
        );
        const reset = await within(15_000, 'no HEADERS-only stream was reset', Promise.race(opened));
        assert.equal(reset, constants.NGHTTP2_ENHANCE_YOUR_CALM);
        // The client goes away at once, the other streams still open: the gateway must notice
        // and give their bytes back (below), not keep them until the idle timeout.
      } finally {
        headersOnly.destroy();
      }
      // The held bytes are given back when streams close: the same address is served again.
      const c = grpcClient(capped.url, capped.ca);
      try {
        const a = { authorization: `Bearer ${await capped.token(['operator:orders'])}` };
        // The gateway sees the destroyed connections close a moment later: wait for that (bounded).
        const { served, lastError } = await setUntilServed(c, a, 'after', 100);
        assert.ok(
          served,
          `the address was served again once its streams had closed (last refusal: ${String(lastError)})`,
        );
        for (let i = 0; i < 3; i += 1) {
          await c.call('Set', { namespace: 'orders', key: `after-${i}`, value: Buffer.alloc(60 * 1024) }, a);
        }
      } finally {
        c.close();
      }
    } finally {
      session.destroy();
      await capped.close();
    }
  });

  void it('destroys a session that floods, is reset and then answers no PING, and frees its bytes', async () => {
    const capped = await startKvGateway({
      kv: { limits: { maxValueSize: '64KiB', bufferedBytesPerIp: '2MiB' } },
    });
    // 250 HEADERS-only streams with an 8 KiB header each: 2.3 MiB held, over the 2 MiB cap.
    const hpack = new HpackEncoder();
    const pad = 'p'.repeat(8 * 1024);
    const silent = await silentClient(
      capped,
      Array.from({ length: 250 }, (_, i) =>
        frame(
          FRAME.HEADERS,
          FLAG.END_HEADERS,
          2 * i + 1,
          hpack.encode(getHeaders('application/grpc', 'x-pad', pad)),
        ),
      ),
    );
    try {
      // Without the PING the session would keep its streams, and their bytes, for the idle
      // timeout (two minutes); an unanswered PING ends it about two seconds after the reset.
      const c = grpcClient(capped.url, capped.ca);
      try {
        const a = { authorization: `Bearer ${await capped.token(['operator:orders'])}` };
        const started = Date.now();
        // The gateway reads the flood on its own connection, maybe after a first call of this
        // one: calls are served until it holds the flood's bytes (bounded), then refused.
        let held: unknown;
        for (let i = 0; i < 50 && held === undefined; i += 1) {
          held = await c
            .call('Set', { namespace: 'orders', key: 'during-silence', value: Buffer.alloc(60 * 1024) }, a)
            .then(
              () => new Promise((r) => setTimeout(r, 50)).then(() => undefined),
              (error: unknown) => error,
            );
        }
        assert.ok(held !== undefined, 'the flood held the address');
        const { served, lastError } = await setUntilServed(c, a, 'after-silence', 60);
        assert.ok(served, `the address was served again (last refusal: ${String(lastError)})`);
        // Freed well before the idle timeout (two minutes).
        assert.ok(Date.now() - started < 10_000);
      } finally {
        c.close();
      }
      await closedBy(silent, 5_000);
    } finally {
      silent.destroy();
      await capped.close();
    }
  });

  void it('closes a connection that had a call refused mid-message and answers no PING', async () => {
    // One call announcing a 4 MiB message (over the 64 KiB + 1 MiB cap) and sending 1 KiB of
    // it: RESOURCE_EXHAUSTED and a reset while the client is still sending.
    await closedForSilence([
      frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, new HpackEncoder().encode(getHeaders())),
      frame(FRAME.DATA, 0, 1, Buffer.concat([messagePrefix(4 * 1024 * 1024), Buffer.alloc(1024)])),
    ]);
  });

  void it('closes a connection that had a Connect call refused mid-request and answers no PING', async () => {
    // A Connect unary call whose content-length announces 4 MiB and that sends 1 KiB of it:
    // ConnectRPC refuses it while the client is still sending.
    const headers = getHeaders(
      'application/proto',
      'connect-protocol-version',
      '1',
      'content-length',
      String(4 * 1024 * 1024),
    );
    await closedForSilence([
      frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, new HpackEncoder().encode(headers)),
      frame(FRAME.DATA, 0, 1, Buffer.alloc(1024)),
    ]);
  });

  void it('limits bandwidth per namespace', async () => {
    const a = await auth('media');
    const codes: number[] = [];
    for (let i = 0; i < 12; i += 1) {
      codes.push(
        await client
          .call('Set', { namespace: 'media', key: `k${i}`, value: Buffer.alloc(4096) }, a)
          .then(() => 0)
          .catch((e: GrpcError) => e.code),
      );
    }
    assert.ok(
      codes.slice(0, 3).every((c) => c === 0),
      String(codes),
    );
    assert.ok(codes.includes(RESOURCE_EXHAUSTED), String(codes));
    // Another namespace has its own budget.
    await client.call(
      'Set',
      { namespace: 'orders', key: 'bw', value: Buffer.alloc(4096) },
      await auth('orders'),
    );
  });
});

void describe('kv rate limits shared on Redis by two replicas', {
  skip: redisUrl === undefined && !requireServices ? 'GATEHOUSE_TEST_REDIS_URL not set' : false,
}, () => {
  let a: KvGateway;
  let b: KvGateway;
  before(async () => {
    const cache = { url: redisUrl, keyPrefix: `kvtest:${randomUUID()}:` };
    const kv = { limits: { requestsPerSecond: 1, burst: 4 } };
    a = await startKvGateway({ kv, cache });
    b = await startKvGateway({ kv, cache });
  });
  after(async () => {
    await a?.close();
    await b?.close();
  });

  void it('counts one client across replicas and sends the remaining quota', async () => {
    // Same issuer key is not shared between the two harnesses, so each gets its own token for the same subject.
    const ca = grpcClient(a.url, a.ca);
    const cb = grpcClient(b.url, b.ca);
    const ta = { authorization: `Bearer ${await a.token(['operator:orders'])}` };
    const tb = { authorization: `Bearer ${await b.token(['operator:orders'])}` };
    try {
      const first = await ca.call('Get', { namespace: 'orders', key: 'k' }, ta);
      assert.equal(first.headers.get('ratelimit-limit')[0], '4');
      const remaining = Number(first.headers.get('ratelimit-remaining')[0]);
      assert.ok(remaining <= 3);
      const refusals: GrpcError[] = [];
      for (let i = 0; i < 6; i += 1) {
        const target =
          i % 2 === 0
            ? cb.call('Get', { namespace: 'orders', key: 'k' }, tb)
            : ca.call('Get', { namespace: 'orders', key: 'k' }, ta);
        await target.catch((e: GrpcError) => refusals.push(e));
      }
      // Seven calls against a shared burst of 4 refilling at 1/s: some are refused on either replica.
      assert.ok(refusals.length >= 2, `${refusals.length} refused`);
      for (const refused of refusals) {
        assert.equal(refused.code, RESOURCE_EXHAUSTED);
        assert.equal(refused.metadata.get('ratelimit-remaining')[0], '0');
        assert.ok(Number(refused.metadata.get('retry-after')[0]) >= 1);
      }
    } finally {
      ca.close();
      cb.close();
    }
  });
});
