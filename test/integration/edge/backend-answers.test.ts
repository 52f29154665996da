/**
 * Backend answers the `node:http2` path (`http2Relay: false`, and HTTP/2 clients of HTTP/1.1
 * routes) cannot pass on to an HTTP/2 client: a status Node's server streams refuse (600-999, a
 * 1xx as the final answer) and a 101 protocol switch. Each must
 * get 502 at once and an `edge.backend.failed` audit, never end the gateway process (an exception
 * in a backend event handler) or wait for a deadline; the connection serves on. CONNECT is
 * answered 501 without reaching the backend, as on the frame relay.
 */
import assert from 'node:assert/strict';
import { type ClientHttp2Session, connect as connectHttp2, type OutgoingHttpHeaders } from 'node:http2';
import { type AddressInfo, createServer as createNetServer, type Server, type Socket } from 'node:net';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { FLAG, FRAME, FrameReader, frame, settingsFrame } from '../../../src/doors/edge/l7/h2/frames.ts';
import { HpackDecoder, HpackEncoder } from '../../../src/doors/edge/l7/h2/hpack.ts';
import { createTestPki, type TestPki } from './certs.ts';
import { type EdgeHarness, startEdge, testListener } from './harness.ts';
import { type Backend, startRawBackend } from './peers.ts';

/** The raw HTTP/1.1 answer for a request path; anything else is 200 `ok`. */
const HTTP1_ANSWERS: Readonly<Record<string, string>> = {
  '/600': 'HTTP/1.1 600 Odd\r\ncontent-length: 2\r\n\r\nno',
  '/999': 'HTTP/1.1 999 Odd\r\ncontent-length: 2\r\n\r\nno',
  '/switch': 'HTTP/1.1 101 Switching Protocols\r\nupgrade: foo\r\nconnection: upgrade\r\n\r\n',
  '/switch-bare': 'HTTP/1.1 101 Switching Protocols\r\n\r\n',
  '/099': 'HTTP/1.1 099 Odd\r\ncontent-length: 2\r\n\r\nno',
};

/** An HTTP/1.1 backend answering each request head from HTTP1_ANSWERS; records request lines. */
async function startHttp1Backend(): Promise<Backend & { readonly requestLines: string[] }> {
  const requestLines: string[] = [];
  const backend = await startRawBackend((socket) => {
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        const line = pending.slice(0, pending.indexOf('\r\n'));
        pending = pending.slice(end + 4);
        requestLines.push(line);
        const path = line.split(' ')[1] ?? '';
        socket.write(HTTP1_ANSWERS[path] ?? 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      }
    });
  });
  return Object.assign(backend, { requestLines });
}

/** A raw h2c backend answering HEADERS for `/<status>` with that status and END_STREAM. */
async function startH2cBackend(): Promise<{
  port: number;
  methods: string[];
  server: Server;
  close(): void;
}> {
  const methods: string[] = [];
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const decoder = new HpackDecoder();
    let preface = 24;
    const reader = new FrameReader(0xffffff, (type, flags, id, payload) => {
      if (type === FRAME.SETTINGS && (flags & FLAG.ACK) === 0)
        socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
      if (type !== FRAME.HEADERS) return;
      let block = Buffer.from(payload);
      if ((flags & FLAG.PADDED) !== 0) block = block.subarray(1, block.length - (block[0] ?? 0));
      if ((flags & FLAG.PRIORITY) !== 0) block = block.subarray(5);
      const fields = decoder.decode(block, 1 << 16).fields;
      const value = (name: string) => fields[fields.indexOf(name) + 1] ?? '';
      methods.push(value(':method'));
      const path = value(':path');
      const status = /^\/[0-9]{3}$/.test(path) ? path.slice(1) : '200';
      const answer = new HpackEncoder().encode([':status', status, 'content-length', '0']);
      socket.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, answer));
    });
    socket.on('data', (chunk: Buffer) => {
      const skip = Math.min(preface, chunk.length);
      preface -= skip;
      if (chunk.length > skip) reader.push(chunk.subarray(skip));
    });
    socket.write(settingsFrame([]));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    methods,
    server,
    close() {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

interface Outcome {
  readonly status: number | undefined;
  readonly body: string;
  readonly rstCode: number | undefined;
  readonly ms: number;
}

/** One request; settles on the response's end, a reset or after `limitMs`. */
function request(
  session: ClientHttp2Session,
  headers: OutgoingHttpHeaders,
  limitMs = 4000,
): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    const stream = session.request(headers, { endStream: headers[':method'] !== 'CONNECT' });
    let status: number | undefined;
    let body = '';
    const done = (rstCode: number | undefined) => {
      clearTimeout(timer);
      resolve({ status, body, rstCode, ms: performance.now() - started });
      if (!stream.closed) stream.close();
    };
    const timer = setTimeout(() => done(undefined), limitMs);
    stream.on('response', (h) => {
      status = h[':status'];
    });
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      body += chunk;
    });
    stream.on('error', () => {});
    stream.on('close', () => done(stream.rstCode));
  });
}

/** A 502 to `path` at once, and a following request on the same connection served. */
async function expect502(session: ClientHttp2Session, path: string): Promise<void> {
  const bad = await request(session, { ':path': path });
  assert.equal(bad.status, 502, `${path}: ${JSON.stringify(bad)}`);
  assert.equal(bad.body, 'Bad gateway\n');
  assert.ok(bad.ms < 2000, `${path} answered at once (${Math.round(bad.ms)} ms)`);
  const next = await request(session, { ':path': '/next' });
  assert.equal(next.status, 200, `the request after ${path} is served: ${JSON.stringify(next)}`);
}

void describe('edge node:http2 path: backend answers an HTTP/2 client cannot be given', () => {
  let pki: TestPki;
  let edge: EdgeHarness;
  let http1: Awaited<ReturnType<typeof startHttp1Backend>>;
  let h2c: Awaited<ReturnType<typeof startH2cBackend>>;
  const sessions: ClientHttp2Session[] = [];

  const open = (host: string): ClientHttp2Session => {
    const port = edge.port();
    const s = connectHttp2(`https://${host}:${port}`, {
      createConnection: () =>
        tlsConnect({ host: '127.0.0.1', port, servername: host, ca: pki.ca, ALPNProtocols: ['h2'] }),
    });
    s.on('error', () => {});
    sessions.push(s);
    return s;
  };

  /** The status an HTTP/1.1 client gets for `path` on the h1 route. */
  const get = (path: string) =>
    new Promise<number>((resolve, reject) => {
      const options: RequestOptions & { readonly ALPNProtocols: string[] } = {
        host: '127.0.0.1',
        port: edge.port(),
        path,
        servername: 'h1.answers.test',
        headers: { host: 'h1.answers.test' },
        ca: pki.ca,
        ALPNProtocols: ['http/1.1'],
        agent: false,
      };
      const r = httpsRequest(options, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      r.on('error', reject);
      r.end();
    });

  before(async () => {
    pki = await createTestPki();
    const leaf = await pki.issue('answers', ['*.answers.test']);
    http1 = await startHttp1Backend();
    h2c = await startH2cBackend();
    const l7 = (id: string, port: number, backendProtocol: string) => ({
      id,
      listener: 'main',
      host: `${id}.answers.test`,
      mode: 'l7',
      backend: `127.0.0.1:${port}`,
      backendProtocol,
      certFile: leaf.certFile,
      keyFile: leaf.keyFile,
    });
    edge = await startEdge({
      // responseTimeout and streamIdleTimeout far beyond what the answers below may take.
      listeners: [
        testListener({
          http2Relay: false,
          responseTimeout: '30s',
          streamIdleTimeout: '5m',
          idleTimeout: '1m',
        }),
      ],
      routes: [l7('h1', http1.port, 'http1'), l7('h2c', h2c.port, 'h2c')],
    });
  });

  after(async () => {
    for (const s of sessions) s.destroy();
    await edge?.[Symbol.asyncDispose]();
    await http1?.[Symbol.asyncDispose]();
    h2c?.close();
    await pki?.[Symbol.asyncDispose]();
  });

  void it('answers 502 to statuses 600 and 999 of an HTTP/1.1 backend', async () => {
    const session = open('h1.answers.test');
    for (const path of ['/600', '/999']) await expect502(session, path);
    const events = await edge.events(
      'edge.backend.failed',
      (e) => e.filter((x) => x.reason === 'malformed response headers').length >= 2,
    );
    assert.ok(
      events.filter((e) => e.resource === 'route:h1' && e.reason === 'malformed response headers').length >=
        2,
    );
  });

  void it('answers 502 to statuses 600, 999 and final 1xx of an h2c backend', async () => {
    const session = open('h2c.answers.test');
    for (const path of ['/600', '/999', '/101', '/199', '/099']) await expect502(session, path);
    const events = await edge.events('edge.backend.failed', (e) =>
      e.some((x) => x.resource === 'route:h2c' && x.reason === 'malformed response headers'),
    );
    assert.ok(events.some((e) => e.resource === 'route:h2c' && e.reason === 'malformed response headers'));
    assert.ok(
      (await edge.metric('gatehouse_edge_http_responses_total', { route: 'h2c', status: '502' })) >= 5,
    );
  });

  void it('answers 502 at once to a 101 from an HTTP/1.1 backend', async () => {
    const session = open('h1.answers.test');
    for (const path of ['/switch', '/switch-bare']) await expect502(session, path);
    const events = await edge.events('edge.backend.failed', (e) =>
      e.some((x) => x.reason === 'switching protocols'),
    );
    assert.ok(events.some((e) => e.resource === 'route:h1' && e.reason === 'switching protocols'));
  });

  void it('gives HTTP/1.1 clients 600-999 as sent, and 502 for a status below 200 or a 101', async () => {
    // An HTTP/1.1 client of an HTTP/1.1 backend: a status of 099 made Node throw out of the
    // backend's 'response' event (the process ended), and a 101 closed the socket unanswered.
    assert.equal(await get('/600'), 600);
    assert.equal(await get('/099'), 502);
    assert.equal(await get('/switch'), 502);
    assert.equal(await get('/ok'), 200, 'and the gateway serves on');
  });

  void it('answers CONNECT 501 and never forwards it', async () => {
    const linesBefore = http1.requestLines.length;
    const methodsBefore = h2c.methods.length;
    for (const host of ['h1.answers.test', 'h2c.answers.test']) {
      const session = open(host);
      const connect = await request(session, { ':method': 'CONNECT', ':authority': 'internal.example:22' });
      assert.equal(connect.status, 501, `${host}: ${JSON.stringify(connect)}`);
      assert.equal(connect.body, 'Not implemented\n');
      assert.ok(connect.ms < 2000, `answered at once (${Math.round(connect.ms)} ms)`);
      const next = await request(session, { ':path': '/next' });
      assert.equal(next.status, 200);
    }
    assert.deepEqual(http1.requestLines.slice(linesBefore), ['GET /next HTTP/1.1']);
    assert.deepEqual(h2c.methods.slice(methodsBefore), ['GET']);
    assert.equal(await edge.metric('gatehouse_edge_http_responses_total', { status: '501' }), 2);
  });
});
