/**
 * The HTTP/2 frame relay (ADR 0150) against backends that misbehave or protect themselves: a
 * real `node:http2` backend whose rapid-reset guard must never be tripped by clients' cancels
 * (finding 5), raw backends that refuse streams or send GOAWAY before processing (the request,
 * body included, goes again: finding 8), one that never sends SETTINGS (handshake deadline), and
 * one with a small stream limit (more connections instead of one long queue).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect as connectHttp2,
  createServer as createH2c,
  constants as h2constants,
  type Http2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import { type AddressInfo, createServer as createNetServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import {
  ERROR,
  FLAG,
  FRAME,
  type Frame,
  FrameReader,
  frame,
  goawayFrame,
  rstStreamFrame,
  SETTING,
  settingsFrame,
  windowUpdateFrame,
} from '../../../src/doors/edge/l7/h2/frames.ts';
import { HpackDecoder, HpackEncoder } from '../../../src/doors/edge/l7/h2/hpack.ts';
import { RESETS_PER_BACKEND_CONNECTION } from '../../../src/doors/edge/l7/h2/relay.ts';
import { createTestPki, type Leaf, type TestPki } from './certs.ts';
import { startEdge, testListener } from './harness.ts';

/** One connection the relay opened to a raw backend. */
interface RawConnection {
  readonly index: number;
  readonly socket: Socket;
  readonly frames: Frame[];
}

/** A raw h2c backend: `onFrame` sees every frame the relay sends (after the preface) and answers. */
async function rawBackend(
  onFrame: (c: RawConnection, f: Frame) => void,
  sendSettings = true,
): Promise<{ port: number; connections: RawConnection[]; server: Server; close(): void }> {
  const connections: RawConnection[] = [];
  const server = createNetServer((socket) => {
    const c: RawConnection = { index: connections.length, socket, frames: [] };
    connections.push(c);
    let preface = 24;
    const reader = new FrameReader(0xffffff, (type, flags, id, payload) => {
      const f = { type, flags, id, payload: Buffer.from(payload) };
      c.frames.push(f);
      if (type === FRAME.SETTINGS && (flags & FLAG.ACK) === 0 && sendSettings) {
        socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
      }
      onFrame(c, f);
    });
    socket.on('data', (chunk: Buffer) => {
      const skip = Math.min(preface, chunk.length);
      preface -= skip;
      if (chunk.length > skip) reader.push(chunk.subarray(skip));
    });
    socket.on('error', () => {});
    // Windows large enough that the relay never waits for a WINDOW_UPDATE in these tests.
    if (sendSettings) {
      socket.write(
        Buffer.concat([
          settingsFrame([[SETTING.INITIAL_WINDOW_SIZE, 1 << 24]]),
          windowUpdateFrame(0, (1 << 24) - 65_535),
        ]),
      );
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    connections,
    server,
    close() {
      server.close();
      for (const c of connections) c.socket.destroy();
    },
  };
}

const encode = (fields: string[]) => new HpackEncoder().encode(fields);

/** Answers stream `id` with 200 and `body`. */
const answer = (socket: Socket, id: number, body: string) =>
  socket.write(
    Buffer.concat([
      frame(FRAME.HEADERS, FLAG.END_HEADERS, id, encode([':status', '200'])),
      frame(FRAME.DATA, FLAG.END_STREAM, id, Buffer.from(body)),
    ]),
  );

/** The request body a raw backend received on stream `id`, once it ended. */
function bodyOf(c: RawConnection, id: number): Buffer | undefined {
  const frames = c.frames.filter((f) => f.id === id);
  const ended = frames.some(
    (f) => (f.type === FRAME.DATA || f.type === FRAME.HEADERS) && (f.flags & FLAG.END_STREAM) !== 0,
  );
  if (!ended) return undefined;
  return Buffer.concat(frames.filter((f) => f.type === FRAME.DATA).map((f) => f.payload));
}

/** A real `node:http2` h2c backend that counts the connections and streams it sees. */
interface H2cBackend {
  readonly port: number;
  /** Open connections. */
  readonly sessions: Set<Http2Session>;
  /** Connections ever accepted. */
  dialled: number;
  /** Streams ever received. */
  seen: number;
  close(): void;
}

async function h2cBackend(
  onStream: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void,
  maxConcurrentStreams?: number,
): Promise<H2cBackend> {
  const server = createH2c(maxConcurrentStreams === undefined ? {} : { settings: { maxConcurrentStreams } });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const backend: H2cBackend = {
    port: (server.address() as AddressInfo).port,
    sessions: new Set(),
    dialled: 0,
    seen: 0,
    close() {
      server.close();
      for (const session of backend.sessions) session.destroy();
    },
  };
  server.on('session', (session) => {
    backend.dialled++;
    backend.sessions.add(session);
    session.on('close', () => backend.sessions.delete(session));
    session.on('error', () => {});
  });
  server.on('stream', (stream, headers) => {
    backend.seen++;
    stream.on('error', () => {});
    onStream(stream, headers);
  });
  return backend;
}

async function until(what: string, check: () => boolean, ms = 30_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The status and body of a request's answer. */
const answerOf = (req: ClientHttp2Stream): Promise<{ status: number; body: string }> =>
  new Promise((resolve, reject) => {
    let status = 0;
    const chunks: Buffer[] = [];
    req.on('response', (h) => {
      status = Number(h[':status']);
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString() }));
    req.on('error', reject);
  });

/** A GET (or a POST when `body` is given) through the edge; resolves with status and body. */
const get = (
  s: ClientHttp2Session,
  path: string,
  body?: Buffer,
): Promise<{ status: number; body: string }> => {
  const req = s.request(
    { ':method': body === undefined ? 'GET' : 'POST', ':path': path },
    { endStream: body === undefined },
  );
  const answered = answerOf(req);
  if (body !== undefined) req.end(body);
  return answered;
};

/**
 * Opens `count` requests on each session, waits until each has reached the backend (`seen`
 * counts the requests it received) or been answered or reset by the edge, cancels them; resolves
 * with what the edge did instead of passing a request on (a status, or `reset <code>`): nothing
 * while the client is within its limits.
 */
async function cancelRound(
  seen: () => number,
  sessions: readonly ClientHttp2Session[],
  count: number,
): Promise<string[]> {
  const stopped: string[] = [];
  const start = seen();
  const streams = sessions.flatMap((c) =>
    Array.from({ length: count }, () => {
      const req = c.request({ ':path': '/hang' });
      req.on('response', (h) => stopped.push(String(h[':status'])));
      req.on('error', () => {
        if (req.rstCode !== h2constants.NGHTTP2_CANCEL) stopped.push(`reset ${req.rstCode}`);
      });
      return req;
    }),
  );
  try {
    await until('the requests at the backend', () => seen() - start + stopped.length >= streams.length);
  } catch (error) {
    const at = seen() - start;
    throw new Error(
      `${String(error)}: ${at} of ${streams.length} there, edge answers ${JSON.stringify(stopped)}`,
      { cause: error },
    );
  }
  for (const req of streams) req.close(h2constants.NGHTTP2_CANCEL);
  return stopped;
}

void describe('edge HTTP/2 frame relay and its backends', () => {
  let pki: TestPki;
  let leaf: Leaf;

  before(async () => {
    pki = await createTestPki();
    leaf = await pki.issue('relay', ['*.relay.test']);
  });
  after(async () => {
    await pki[Symbol.asyncDispose]();
  });

  const edgeTo = (port: number, listener: Readonly<Record<string, unknown>> = {}) =>
    startEdge({
      // connectTimeout also bounds a backend connection's HTTP/2 handshake: 10 s, so a loaded
      // machine (the backends run in this process, the full suite beside them) does not fail
      // handshakes; the test of that deadline sets its own.
      listeners: [
        testListener({
          http2Relay: true,
          idleTimeout: '10s',
          responseTimeout: '5s',
          connectTimeout: '10s',
          ...listener,
        }),
      ],
      routes: [
        {
          id: 'r',
          listener: 'main',
          host: '*',
          mode: 'l7',
          backend: `127.0.0.1:${port}`,
          backendProtocol: 'h2c',
          certFile: leaf.certFile,
          keyFile: leaf.keyFile,
        },
      ],
    });

  /** An HTTP/2 client through the edge from `from` (any 127/8 address: separate clients). */
  const client = (port: number, from = '127.0.0.1'): ClientHttp2Session => {
    const s = connectHttp2(`https://x.relay.test:${port}`, {
      createConnection: () =>
        tlsConnect({
          host: '127.0.0.1',
          port,
          // A net option tls.connect passes on (its type omits it).
          ...({ localAddress: from } as object),
          servername: 'x.relay.test',
          ca: pki.ca,
          ALPNProtocols: ['h2'],
        }),
    });
    s.on('error', () => {});
    return s;
  };

  void it('keeps client cancels under the rapid-reset guard of a real node:http2 backend', async () => {
    // A real backend (nghttp2 guards against rapid reset per connection: a burst of 1000).
    const resetsBySession = new Map<Http2Session, number>();
    let slow: ServerHttp2Stream | undefined;
    const backend = await h2cBackend((stream, headers) => {
      const session = stream.session;
      stream.on('close', () => {
        if (stream.rstCode === h2constants.NGHTTP2_CANCEL && session !== undefined) {
          resetsBySession.set(session, (resetsBySession.get(session) ?? 0) + 1);
        }
      });
      if (headers[':path'] === '/slow') slow = stream;
      // '/hang' is never answered: the client cancels it.
    });
    // The slow request waits out the whole storm: on a loaded machine that is longer than 5 s.
    const edge = await edgeTo(backend.port, { responseTimeout: '30s' });
    // Six clients (six addresses: each has its own reset budget of 1000).
    const clients = Array.from({ length: 6 }, (_, i) => client(edge.port(), `127.0.0.${i + 2}`));
    try {
      // A request in flight on one of the first backend connections, answered after the storm.
      const first = clients[0];
      assert.ok(first !== undefined);
      const pending = get(first, '/slow');
      await until('the slow request at the backend', () => slow !== undefined);
      // Six clients, each under its own reset budget, cancel 900 streams each (5400 resets: far
      // over nghttp2's burst if they landed on four shared connections).
      const BATCH = 100;
      const resets = () => {
        let n = 0;
        for (const v of resetsBySession.values()) n += v;
        return n;
      };
      for (let round = 1; round <= 9; round++) {
        const refused = await cancelRound(() => backend.seen, clients, BATCH);
        assert.deepEqual(
          refused,
          [],
          `round ${round}: the edge answered requests of clients within their limits`,
        );
        // The next round starts once this one's cancels reached the backend, so the clients' slots
        // are free again however slowly a loaded machine relays them.
        await until(`the cancels of round ${round} at the backend`, () => resets() >= round * 6 * BATCH);
      }
      slow?.respond({ ':status': 200 });
      slow?.end('finished');
      const answered = await pending;
      assert.deepEqual(
        answered,
        { status: 200, body: 'finished' },
        'the request on a retired connection finished',
      );
      const most = Math.max(...resetsBySession.values());
      // Each connection is retired at 100 resets; the streams it still carried may add theirs.
      assert.ok(
        most <= RESETS_PER_BACKEND_CONNECTION + 6 * BATCH,
        `a backend connection took ${most} resets`,
      );
      assert.ok(most < 1000, `nghttp2's burst of 1000 was reached (${most})`);
      assert.ok(backend.dialled > 4, `connections were rotated (${backend.dialled} dialled)`);
      // And the pool still serves.
      const answeredFirst = slow;
      const next = get(first, '/slow');
      await until('the next request at the backend', () => slow !== answeredFirst);
      slow?.respond({ ':status': 200 });
      slow?.end('again');
      assert.deepEqual(await next, { status: 200, body: 'again' });
    } finally {
      for (const c of clients) c.destroy();
      await edge[Symbol.asyncDispose]();
      backend.close();
    }
  });

  void it('answers 429 to a client whose cancels used up its backend reset budget', async () => {
    let resets = 0;
    const backend = await h2cBackend((stream) => {
      stream.on('close', () => {
        if (stream.rstCode === h2constants.NGHTTP2_CANCEL) resets++;
      });
    });
    const edge = await edgeTo(backend.port);
    // Two connections of one client, each under its own connection's reset budget (1000).
    const conns = [client(edge.port(), '127.0.0.20'), client(edge.port(), '127.0.0.20')];
    try {
      // Rounds of 200 cancels until the edge refuses the client: its budget is 1000 resets and
      // 200 more a second, so within the first six rounds on a quick machine; a slow one refills
      // more between rounds (bounded: 40 rounds, 8000 resets).
      let cancelled = 0;
      let refused: string[] = [];
      for (let round = 0; round < 40 && refused.length === 0; round++) {
        refused = await cancelRound(() => backend.seen, conns, 100);
        cancelled += 200 - refused.length;
        // The next round starts once these cancels reached the backend: the client's slots are
        // free again (it may have 256 requests in flight) however slowly a loaded machine relays.
        await until('the cancels at the backend', () => resets >= cancelled);
      }
      assert.ok(refused.length > 0, 'the client is refused');
      assert.deepEqual(new Set(refused), new Set(['429']), 'with 429');
      assert.ok(cancelled >= 1000, `refused after ${cancelled} cancels, within the burst of 1000`);
      assert.ok(
        (await edge.metric('gatehouse_edge_request_limits_total', {
          route: 'r',
          reason: 'client-resets',
        })) >= 1,
      );
      // Another client is served meanwhile.
      const other = client(edge.port(), '127.0.0.21');
      const req = other.request({ ':path': '/hang' });
      req.on('error', () => {});
      const seenBefore = backend.seen;
      await until('the other client at the backend', () => backend.seen > seenBefore);
      req.close(h2constants.NGHTTP2_CANCEL);
      other.destroy();
    } finally {
      for (const c of conns) c.destroy();
      await edge[Symbol.asyncDispose]();
      backend.close();
    }
  });

  void it('keeps dialling while retired connections are pinned open by slow requests, up to 64 of them', async () => {
    const { promise: released, resolve: release } = Promise.withResolvers<void>();
    const backend = await h2cBackend((stream, headers) => {
      if (headers[':path'] === '/ok') stream.respond({ ':status': 200 }, { endStream: true });
      if (headers[':path'] === '/long') {
        // A long response: a chunk now, the rest once the attack is over.
        stream.respond({ ':status': 200 });
        stream.write('first ');
        void released.then(() => stream.end('last'));
      }
      // Anything else is held open (slow requests) or cancelled by the client.
    });
    const edge = await edgeTo(backend.port, { idleTimeout: '30s' });
    const holder = client(edge.port(), '127.0.0.30');
    // Another client's long responses, on the connections about to be retired.
    const reader = client(edge.port(), '127.0.0.38');
    const clients: ClientHttp2Session[] = [holder, reader];
    try {
      const long = Array.from({ length: 4 }, () => get(reader, '/long'));
      await until('the long responses at the backend', () => backend.seen >= 4);
      // 20 rounds: 16 retire four connections each (64), then the pool declines to retire more.
      for (let round = 0; round < 20; round++) {
        // A slow request on each pooled connection, then 400 cancels (100 per connection) from
        // clients of their own (their own reset budgets): four more connections retired, each
        // pinned open by the slow request it carries.
        for (let k = 0; k < 4; k++)
          holder.request({ ':method': 'POST', ':path': '/slow' }).on('error', () => {});
        // (Four client connections: a connection takes 128 streams at a time.)
        const cancellers = Array.from({ length: 4 }, (_, k) =>
          client(edge.port(), `127.0.0.${100 + 4 * round + k}`),
        );
        clients.push(...cancellers);
        const streams = cancellers.flatMap((canceller) =>
          Array.from({ length: 100 }, () => {
            const req = canceller.request({ ':path': '/cancel' });
            req.on('error', () => {});
            return req;
          }),
        );
        const target = backend.seen + 404;
        await until(`round ${round} at the backend`, () => backend.seen >= target);
        for (const req of streams) req.close(h2constants.NGHTTP2_CANCEL);
        if (round < 16) await until(`round ${round} retired`, () => backend.dialled >= 4 * (round + 1));
      }
      // 64 retired and pinned, four live ones that took the last rounds' resets without retiring.
      assert.ok(
        backend.dialled >= 64 && backend.dialled <= 72,
        `${backend.dialled} connections dialled (64 retired at most, then no more)`,
      );
      // Another client is served: the pinned connections do not count against the pool's 16.
      const victim = client(edge.port(), '127.0.0.39');
      clients.push(victim);
      assert.equal((await get(victim, '/ok')).status, 200);
      // Retiring connections never cut the streams they still carry.
      release();
      assert.deepEqual(
        await Promise.all(long),
        Array.from({ length: 4 }, () => ({ status: 200, body: 'first last' })),
      );
    } finally {
      for (const c of clients) c.destroy();
      await edge[Symbol.asyncDispose]();
      backend.close();
    }
  });

  void it('holds a client to its share of a small backend even on a cold pool', async () => {
    const held: ServerHttp2Stream[] = [];
    const backend = await h2cBackend((stream, headers) => {
      if (headers[':path'] === '/ok') stream.respond({ ':status': 200 }, { endStream: true });
      else held.push(stream);
    }, 2);
    const edge = await edgeTo(backend.port);
    const greedy = client(edge.port(), '127.0.0.50');
    const victim = client(edge.port(), '127.0.0.51');
    try {
      // 40 requests before the backend ever said it takes 2 streams a connection.
      const answers = Array.from({ length: 40 }, (_, i) => get(greedy, `/hold${i}`));
      await until('the greedy client at its share', () => held.length === 8);
      const refused = await Promise.all(answers.slice(8));
      assert.deepEqual(
        refused.map((a) => a.status),
        Array.from({ length: 32 }, () => 429),
      );
      assert.equal((await get(victim, '/ok')).status, 200, 'another client is served');
      for (const stream of held.splice(0)) stream.respond({ ':status': 200 }, { endStream: true });
      assert.deepEqual(
        (await Promise.all(answers.slice(0, 8))).map((a) => a.status),
        Array.from({ length: 8 }, () => 200),
      );
    } finally {
      greedy.destroy();
      victim.destroy();
      await edge[Symbol.asyncDispose]();
      backend.close();
    }
  });

  void it('closes a retired connection whose last stream the backend refuses', async () => {
    const held = new Map<RawConnection, number>();
    const closed = new Set<number>();
    let heads = 0;
    const backend = await rawBackend((c, f) => {
      if (f.type !== FRAME.HEADERS) return;
      heads++;
      const path = new HpackDecoder().decode(f.payload, 1e6).fields[7];
      // One held request on each of the first four connections; anything on later ones is answered.
      if (c.index >= 4) answer(c.socket, f.id, 'ok');
      else if (path === '/hold') held.set(c, f.id);
    });
    const edge = await edgeTo(backend.port);
    const holder = client(edge.port(), '127.0.0.60');
    const canceller = client(edge.port(), '127.0.0.61');
    const more = client(edge.port(), '127.0.0.62');
    try {
      const holds = Array.from({ length: 4 }, () => get(holder, '/hold'));
      await until('the held requests', () => held.size === 4);
      for (const c of backend.connections) c.socket.once('close', () => closed.add(c.index));
      // 400 cancels (two connections: 128 streams each at a time) retire the four connections.
      for (let round = 0; round < 2; round++) {
        assert.deepEqual(await cancelRound(() => heads, [canceller, more], 100), [], 'no request refused');
      }
      const resets = (c: RawConnection) => c.frames.filter((f) => f.type === FRAME.RST_STREAM).length;
      await until('four retired connections (100 resets each)', () =>
        backend.connections.slice(0, 4).every((c) => resets(c) >= 100),
      );
      // The backend refuses each held stream: it goes to a new connection and is answered there.
      for (const [c, id] of held) c.socket.write(rstStreamFrame(id, ERROR.REFUSED_STREAM));
      assert.deepEqual(
        (await Promise.all(holds)).map((a) => a.status),
        [200, 200, 200, 200],
      );
      await until('the retired connections closed', () => [0, 1, 2, 3].every((i) => closed.has(i)), 2000);
    } finally {
      for (const c of [holder, canceller, more]) c.destroy();
      await edge[Symbol.asyncDispose]();
      backend.close();
    }
  });

  void it('sends a refused request again with the body the client sends afterwards', async () => {
    const refused = new Set<number>();
    const backend = await rawBackend((c, f) => {
      if (f.type === FRAME.HEADERS && refused.size === 0) {
        // The first stream is refused before any of its body went out (§8.7: not processed).
        refused.add(f.id);
        c.socket.write(rstStreamFrame(f.id, ERROR.REFUSED_STREAM));
        return;
      }
      const ends = (f.type === FRAME.DATA || f.type === FRAME.HEADERS) && (f.flags & FLAG.END_STREAM) !== 0;
      const body = ends && !refused.has(f.id) ? bodyOf(c, f.id) : undefined;
      if (body !== undefined) {
        answer(c.socket, f.id, `${body.length} ${createHash('sha256').update(body).digest('hex')}`);
      }
    });
    const edge = await edgeTo(backend.port);
    const s = client(edge.port());
    try {
      const body = randomBytes(100_000);
      const req = s.request({ ':method': 'POST', ':path': '/upload' });
      req.on('error', () => {});
      const done = answerOf(req);
      // The body comes only after the backend refused the stream.
      await until('the refusal', () => refused.size === 1);
      await new Promise((r) => setTimeout(r, 50));
      req.end(body);
      const got = await done;
      assert.equal(got.status, 200);
      assert.equal(got.body, `${body.length} ${createHash('sha256').update(body).digest('hex')}`);
      // A refused GET goes again too.
      refused.clear();
      assert.equal((await get(s, '/again')).status, 200);
      assert.equal(refused.size, 1, 'the GET was refused once and then served');
    } finally {
      s.destroy();
      await edge[Symbol.asyncDispose]();
      backend.close();
    }
  });

  void it('sends requests above a backend GOAWAY again on another connection', async () => {
    let goaways = 0;
    const backend = await rawBackend((c, f) => {
      if (f.type !== FRAME.HEADERS) return;
      if (c.index === 0) {
        // The first connection goes away before processing anything (last stream id 0).
        goaways++;
        c.socket.write(goawayFrame(0, ERROR.NO_ERROR));
        return;
      }
      answer(c.socket, f.id, `served on connection ${c.index}`);
    });
    const edge = await edgeTo(backend.port);
    const s = client(edge.port());
    try {
      const got = await get(s, '/x');
      assert.equal(got.status, 200);
      assert.match(got.body, /^served on connection [1-9]/);
      assert.equal(goaways, 1);
    } finally {
      s.destroy();
      await edge[Symbol.asyncDispose]();
      backend.close();
    }
  });

  void it('answers 502 within the connect deadline when a backend never sends SETTINGS', async () => {
    const backend = await rawBackend(() => {}, false);
    // connectTimeout 300 ms covers the HTTP/2 handshake; responseTimeout is 5 s.
    const edge = await edgeTo(backend.port, { connectTimeout: '300ms' });
    const s = client(edge.port());
    try {
      const started = performance.now();
      const got = await get(s, '/');
      const took = performance.now() - started;
      assert.equal(got.status, 502);
      assert.ok(took < 2000, `answered after ${Math.round(took)} ms`);
      const failed = await edge.events('edge.backend.failed');
      assert.equal(failed[0]?.reason, 'backend-handshake-timeout');
    } finally {
      s.destroy();
      await edge[Symbol.asyncDispose]();
      backend.close();
    }
  });

  void it('opens more backend connections when the pooled ones are at the backend stream limit', async () => {
    const held: ServerHttp2Stream[] = [];
    const backend = await h2cBackend((stream) => held.push(stream), 2);
    const edge = await edgeTo(backend.port);
    const s = client(edge.port());
    // Clients get a quarter of the pool (16 × 2 streams): 8 each, so the 20 requests come from 4.
    const others = Array.from({ length: 4 }, (_, i) => client(edge.port(), `127.0.0.${i + 10}`));
    try {
      // Warm the pool so the backend's limit is known, then hold 20 requests at once.
      const warm = get(s, '/warm');
      await until('the warm-up request', () => held.length === 1);
      held.shift()?.respond({ ':status': 204 }, { endStream: true });
      assert.equal((await warm).status, 204);
      const answers = Array.from({ length: 20 }, (_, i) => get(others[i % 4] ?? s, `/n${i}`));
      // 4 pooled connections × 2 streams would leave 12 requests queued; 10 connections hold all.
      await until('all 20 requests at the backend', () => held.length === 20);
      assert.ok(backend.sessions.size >= 10, `${backend.sessions.size} backend connections`);
      for (const stream of held.splice(0)) stream.respond({ ':status': 200 }, { endStream: true });
      const statuses = (await Promise.all(answers)).map((a) => a.status);
      assert.deepEqual(
        statuses,
        Array.from({ length: 20 }, () => 200),
      );
      // A ninth request of one client while it holds eight: over its share, 429.
      const eight = Array.from({ length: 8 }, (_, i) => get(s, `/held${i}`));
      await until('eight held requests', () => held.length === 8);
      assert.equal((await get(s, '/ninth')).status, 429);
      for (const stream of held.splice(0)) stream.respond({ ':status': 200 }, { endStream: true });
      assert.deepEqual(
        (await Promise.all(eight)).map((a) => a.status),
        Array.from({ length: 8 }, () => 200),
      );
    } finally {
      for (const o of others) o.destroy();
      s.destroy();
      await edge[Symbol.asyncDispose]();
      backend.close();
    }
  });

  void it('drops framing, authentication and request-modifier fields from client trailers', async () => {
    const blocks: string[][] = [];
    const backend = await rawBackend((c, f) => {
      if (f.type !== FRAME.HEADERS) return;
      blocks.push(new HpackDecoder().decode(f.payload, 1e6).fields);
      if ((f.flags & FLAG.END_STREAM) !== 0) answer(c.socket, f.id, 'ok');
    });
    const edge = await edgeTo(backend.port);
    const s = client(edge.port());
    try {
      const req = s.request({ ':method': 'POST', ':path': '/t', te: 'trailers' }, { waitForTrailers: true });
      req.on('wantTrailers', () =>
        req.sendTrailers({
          'x-checksum': 'abc',
          authorization: 'Bearer x',
          'content-length': '1',
          cookie: 'a=b',
        }),
      );
      req.end('body');
      const status = await new Promise<number>((resolve, reject) => {
        req.on('response', (h) => resolve(Number(h[':status'])));
        req.on('error', reject);
      });
      assert.equal(status, 200);
      const trailers = blocks[1] ?? [];
      assert.deepEqual(trailers, ['x-checksum', 'abc']);
    } finally {
      s.destroy();
      await edge[Symbol.asyncDispose]();
      backend.close();
    }
  });

  void it('decodes what it sends: refused streams carry the same request head the second time', async () => {
    const heads: string[][] = [];
    let refusedOnce = false;
    const backend = await rawBackend((c, f) => {
      if (f.type !== FRAME.HEADERS) return;
      heads.push(new HpackDecoder().decode(f.payload, 1e6).fields);
      if (!refusedOnce) {
        refusedOnce = true;
        c.socket.write(rstStreamFrame(f.id, ERROR.REFUSED_STREAM));
        return;
      }
      answer(c.socket, f.id, 'ok');
    });
    const edge = await edgeTo(backend.port);
    const s = client(edge.port());
    try {
      assert.equal((await get(s, '/same?q=1')).status, 200);
      assert.equal(heads.length, 2);
      assert.deepEqual(heads[1], heads[0]);
    } finally {
      s.destroy();
      await edge[Symbol.asyncDispose]();
      backend.close();
      await once(backend.server, 'close').catch(() => {});
    }
  });
});
