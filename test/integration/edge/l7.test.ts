import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import {
  type ClientHttp2Session,
  connect as connectHttp2,
  constants,
  createServer as createH2cServer,
} from 'node:http2';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { addAbortSignal } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { Agent, WebSocket } from 'undici';
import { type HoldingBackend, startEchoBackend, startHoldingBackend } from './backends.ts';
import { createTestPki, type Leaf, type TestPki } from './certs.ts';
import { type GrpcBackend, grpcClient, startGrpcBackend } from './grpc-peer.ts';
import { type EdgeHarness, startEdge, testListener } from './harness.ts';
import { type Backend, curl, http1Get } from './peers.ts';

interface Echo {
  readonly protocol: string;
  readonly path: string;
  readonly host: string;
  readonly xff: string;
  readonly realIp: string;
  readonly proto: string;
  readonly spoofed: string;
  readonly bytes: number;
}

type Call = grpc.ClientUnaryCall & grpc.ClientReadableStream<Buffer> & grpc.ClientWritableStream<Buffer>;
type Fn = (...args: unknown[]) => Call;

/** An L7 route `<id>.l7.test` of the listener `main` to `backend`. */
function l7Route(id: string, backend: Backend, backendProtocol: 'h2c' | 'http1', leaf: Leaf) {
  return {
    id,
    listener: 'main',
    host: `${id}.l7.test`,
    mode: 'l7',
    backend: backend.address,
    backendProtocol,
    certFile: leaf.certFile,
    keyFile: leaf.keyFile,
  };
}

/** Runs `fn` 50 ms later (a failing backend's failure, after the first part of its body). */
const later = (fn: () => void) => setTimeout(fn, 50).unref();

/**
 * A backend that starts a response and fails in the middle of its body: it sends the headers
 * and `part\n`, then 50 ms later `/reset-internal` and `/reset-cancel` (h2c) reset the stream
 * with INTERNAL_ERROR or CANCEL and nothing before it, and `/drop` destroys the connection (h2c,
 * or HTTP/1.1 with a chunked body; `/drop-length` an HTTP/1.1 body with a content-length).
 */
async function startFailingBackend(kind: 'h2c' | 'http1'): Promise<Backend> {
  const open = new Set<{ destroy(): void }>();
  const track = (s: { destroy(): void; once(e: 'close', f: () => void): unknown }) => {
    open.add(s);
    s.once('close', () => open.delete(s));
  };
  let server;
  if (kind === 'h2c') {
    server = createH2cServer();
    server.on('session', track);
    server.on('stream', (stream, headers) => {
      stream.on('error', () => {});
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.write('part\n');
      later(() => {
        const path = headers[':path'];
        // destroy(error) and an aborted signal reset without an END_STREAM first (close() ends).
        if (path === '/reset-internal') stream.destroy(new Error('backend fails'));
        else if (path === '/reset-cancel') addAbortSignal(AbortSignal.abort(), stream);
        else stream.session?.destroy();
      });
    });
  } else {
    server = createHttpServer((req, res) => {
      req.resume();
      const length = req.url === '/drop-length' ? { 'content-length': 100 } : {};
      res.writeHead(200, { 'content-type': 'text/plain', ...length });
      res.write('part\n');
      later(() => res.socket?.destroy());
    });
    server.on('connection', track);
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    async [Symbol.asyncDispose]() {
      for (const s of open) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

interface H2Outcome {
  readonly status: number | undefined;
  readonly body: string;
  readonly rstCode: number | undefined;
  /** Milliseconds from the request to the stream's close. */
  readonly ms: number;
  /** The stream was still open after 2 s (the test gave up on it). */
  readonly timedOut: boolean;
}

/**
 * One HTTP/2 request; `body.end: false` leaves the request body unfinished. `responded` is the
 * time (ms from the request) of the response headers; `done` comes when the stream closed.
 */
function h2Exchange(
  session: ClientHttp2Session,
  method: string,
  path: string,
  body?: { readonly body: string; readonly end: boolean },
): { readonly responded: Promise<number>; readonly done: Promise<H2Outcome> } {
  const started = performance.now();
  const stream = session.request({ ':method': method, ':path': path }, { endStream: body === undefined });
  stream.on('error', () => {});
  let status: number | undefined;
  const chunks: Buffer[] = [];
  const responded = new Promise<number>((resolve) =>
    stream.once('response', (h) => {
      status = Number(h[':status']);
      resolve(performance.now() - started);
    }),
  );
  stream.on('data', (c: Buffer) => chunks.push(c));
  if (body?.end === true) stream.end(body.body);
  else if (body !== undefined) stream.write(body.body);
  const done = new Promise<H2Outcome>((resolve) => {
    let timedOut = false;
    const giveUp = setTimeout(() => {
      timedOut = true;
      stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    }, 2000);
    stream.once('close', () => {
      clearTimeout(giveUp);
      resolve({
        status,
        body: Buffer.concat(chunks).toString(),
        rstCode: timedOut ? undefined : stream.rstCode,
        ms: performance.now() - started,
        timedOut,
      });
    });
  });
  return { responded, done };
}

// Both HTTP/2 data paths: the frame relay (ADR 0150) and node:http2 streams.
for (const http2Relay of [true, false]) {
  void describe(`edge L7 termination${http2Relay ? '' : ' (node:http2 path, http2Relay off)'}`, () => {
    let pki: TestPki;
    let edge: EdgeHarness;
    let leaf: Leaf;
    let grpcBackend: GrpcBackend;
    const backends: Backend[] = [];

    before(async () => {
      pki = await createTestPki();
      leaf = await pki.issue('l7', ['*.l7.test']);
      const h2c = await startEchoBackend('h2c');
      const http1 = await startEchoBackend('http1');
      const tlsBackend = await startEchoBackend('h2', await pki.issue('origin', ['127.0.0.1', 'localhost']));
      // Certificates for an address and for the name "localhost" alone: a backend named by its
      // IP address must be verified against that address.
      const ipBackend = await startEchoBackend('h2', await pki.issue('origin-ip', ['127.0.0.1']));
      const impostor = await startEchoBackend('h2', await pki.issue('origin-localhost', ['localhost']));
      backends.push(h2c, http1, tlsBackend, ipBackend, impostor);
      grpcBackend = await startGrpcBackend();
      const l7 = (id: string, host: string, backend: string, extra: Record<string, unknown> = {}) => ({
        id,
        listener: 'main',
        host,
        mode: 'l7',
        backend,
        certFile: leaf.certFile,
        keyFile: leaf.keyFile,
        ...extra,
      });
      edge = await startEdge({
        // 8 MiB gRPC echoes on a loaded 2-core machine need more than the default 500 ms.
        listeners: [
          testListener({ minTlsVersion: 'TLSv1.2', responseTimeout: '2s', idleTimeout: '10s', http2Relay }),
        ],
        routes: [
          l7('h2c', 'h2c.l7.test', h2c.address, { backendProtocol: 'h2c' }),
          l7('http1', 'http1.l7.test', http1.address, { backendProtocol: 'http1' }),
          l7('tls', 'tls.l7.test', `localhost:${tlsBackend.port}`, {
            backendProtocol: 'h2',
            backendCaFile: pki.caFile,
          }),
          l7('tls-ip', 'tls-ip.l7.test', ipBackend.address, {
            backendProtocol: 'h2',
            backendCaFile: pki.caFile,
          }),
          l7('https-ip', 'https-ip.l7.test', ipBackend.address, {
            backendProtocol: 'https',
            backendCaFile: pki.caFile,
          }),
          l7('impostor', 'impostor.l7.test', impostor.address, {
            backendProtocol: 'h2',
            backendCaFile: pki.caFile,
          }),
          l7('grpc', 'grpc.l7.test', grpcBackend.address, { backendProtocol: 'h2c' }),
          l7('down', 'down.l7.test', '127.0.0.1:1', { backendProtocol: 'http1' }),
          l7('guarded', 'guarded.l7.test', http1.address, { backendProtocol: 'http1' }),
        ],
        policies: [
          { id: 'no-bots', route: 'guarded', kind: 'block-user-agent', value: 'EvilBot' },
          { id: 'need-team', route: 'guarded', kind: 'require-header', header: 'X-Team', value: 'edge' },
        ],
      });
    });

    after(async () => {
      await edge[Symbol.asyncDispose]();
      for (const b of backends) await b[Symbol.asyncDispose]();
      await grpcBackend[Symbol.asyncDispose]();
      await pki[Symbol.asyncDispose]();
    });

    const get = async (host: string, extra: readonly string[] = [], path = '/') => {
      const r = await curl(host, edge.port(), pki.caFile, extra, path);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as Echo;
    };

    void it('terminates h2 and http/1.1 from curl and proxies to h2c, HTTP/1.1 and TLS backends with forwarding headers', async () => {
      for (const [host, protocol] of [
        ['h2c.l7.test', '2.0'],
        ['http1.l7.test', '1.1'],
        ['tls.l7.test', '2.0'],
      ] as const) {
        for (const flag of ['--http2', '--http1.1']) {
          const echo = await get(
            host,
            [
              flag,
              '-H',
              'X-Forwarded-For: 6.6.6.6',
              '-H',
              'True-Client-IP: 6.6.6.6',
              '-H',
              'X-Client-IP: 6.6.6.6',
              '-H',
              'X-Forwarded-Port: 1',
            ],
            '/p?q=1',
          );
          assert.equal(echo.spoofed, '', 'client-sent client-address headers never reach the backend');
          assert.equal(echo.protocol, protocol, `${host} ${flag}`);
          assert.equal(echo.path, '/p?q=1');
          assert.equal(echo.xff, '127.0.0.1', 'client-sent X-Forwarded-For is replaced');
          assert.equal(echo.realIp, '127.0.0.1');
          assert.equal(echo.proto, 'https');
          assert.equal(echo.host, `${host}:${edge.port()}`);
        }
      }
      const body = randomBytes(3 * 1024 * 1024);
      const { writeFile } = await import('node:fs/promises');
      const file = `${pki.dir}/upload.bin`;
      await writeFile(file, body);
      const upload = await get('h2c.l7.test', ['--http2', '--data-binary', `@${file}`]);
      assert.equal(upload.bytes, body.length);
      await edge.expectMetric('gatehouse_edge_http_responses_total', { route: 'h2c', status: '200' }, 3);
    });

    void it('verifies a TLS backend named by its IP address against that address', async () => {
      for (const host of ['tls-ip.l7.test', 'https-ip.l7.test']) {
        for (const flag of ['--http2', '--http1.1']) {
          const echo = await get(host, [flag]);
          assert.equal(echo.xff, '127.0.0.1', `${host} ${flag}`);
        }
      }
      // A certificate for "localhost" is not one for 127.0.0.1.
      for (const flag of ['--http2', '--http1.1']) {
        const r = await curl('impostor.l7.test', edge.port(), pki.caFile, [
          flag,
          '-w',
          '%{http_code}',
          '-o',
          '/dev/null',
        ]);
        assert.equal(r.stdout, '502', flag);
      }
    });

    void it("answers 421 to a request that names another route than its connection (coalescing cannot skip a route's policies)", async () => {
      const port = edge.port();
      // http1.l7.test and guarded.l7.test share a backend; only guarded requires X-Team.
      for (const flag of ['--http2', '--http1.1']) {
        for (const host of ['guarded.l7.test', `GUARDED.l7.test.:${port}`]) {
          const r = await curl('http1.l7.test', port, pki.caFile, [flag, '-i', '-H', `Host: ${host}`]);
          assert.match(r.stdout, /^HTTP\/(2|1\.1) 421/, `${flag} ${host}: ${r.stdout.slice(0, 80)}`);
          assert.match(r.stdout, /Misdirected request\n$/);
        }
        // A host that no route names goes where the server name sent the connection.
        const elsewhere = await get('http1.l7.test', [flag, '-H', 'Host: elsewhere.example']);
        assert.equal(elsewhere.host, 'elsewhere.example');
      }
      const ws = await curl('http1.l7.test', port, pki.caFile, [
        '--http1.1',
        '-i',
        '-H',
        'Host: guarded.l7.test',
        '-H',
        'Connection: Upgrade',
        '-H',
        'Upgrade: websocket',
        '-H',
        'Sec-WebSocket-Version: 13',
        '-H',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      ]);
      assert.match(ws.stdout, /^HTTP\/1\.1 421/);
      await edge.expectMetric('gatehouse_edge_http_responses_total', { route: 'http1', status: '421' }, 4);
      const events = await edge.events('edge.request.misdirected', (e) => e.length >= 5);
      assert.ok(events.length >= 5);
      assert.ok(
        events.every(
          (e) =>
            e.decision === 'deny' &&
            e.resource === 'route:http1' &&
            (e.details as { route?: string } | undefined)?.route === 'guarded',
        ),
      );
    });

    void it('answers 502 with a minimal body when the backend is down or never answers', async () => {
      const down = await curl('down.l7.test', edge.port(), pki.caFile, ['-i']);
      assert.match(down.stdout, /^HTTP\/2 502/);
      assert.match(down.stdout, /Bad gateway\n$/);
      const started = performance.now();
      const hang = await curl('http1.l7.test', edge.port(), pki.caFile, ['-i'], '/hang');
      assert.match(hang.stdout, /^HTTP\/2 502/, hang.stderr);
      const waited = performance.now() - started;
      assert.ok(waited >= 2000 && waited < 2000 + 1500, `response timeout honoured (${waited} ms)`);
      assert.ok(
        (await edge.metric('gatehouse_edge_backend_dial_seconds_count', {
          route: 'down',
          outcome: 'error',
        })) >= 1,
      );
      assert.ok(
        (await edge.metric('gatehouse_edge_backend_dial_seconds_count', { route: 'http1', outcome: 'ok' })) >=
          1,
      );
      const events = await edge.events('edge.backend.failed', (e) => e.length >= 2);
      assert.ok(events.some((e) => e.resource === 'route:down'));
      assert.ok(events.some((e) => e.reason === 'response-timeout'));
    });

    void it('enforces L7 policies with 403 and audit events', async () => {
      const port = edge.port();
      const bot = await curl('guarded.l7.test', port, pki.caFile, [
        '-i',
        '-A',
        'x EvilBot/1',
        '-H',
        'X-Team: edge',
      ]);
      assert.match(bot.stdout, /^HTTP\/2 403/);
      const missing = await curl('guarded.l7.test', port, pki.caFile, ['-i']);
      assert.match(missing.stdout, /^HTTP\/2 403/);
      const wrong = await curl('guarded.l7.test', port, pki.caFile, ['-i', '-H', 'X-Team: other']);
      assert.match(wrong.stdout, /^HTTP\/2 403/);
      const ok = await get('guarded.l7.test', ['-H', 'X-Team: edge']);
      assert.equal(ok.xff, '127.0.0.1');
      await edge.expectMetric(
        'gatehouse_edge_policy_blocks_total',
        { route: 'guarded', policy: 'no-bots' },
        1,
      );
      await edge.expectMetric(
        'gatehouse_edge_policy_blocks_total',
        { route: 'guarded', policy: 'need-team' },
        2,
      );
      const events = await edge.events('edge.request.blocked', (e) => e.length >= 3);
      assert.equal(events.length, 3);
      assert.ok(events.every((e) => e.decision === 'deny' && e.clientIp === '127.0.0.1'));
    });

    void it('streams server-sent events as they are produced', async () => {
      const r = await curl('http1.l7.test', edge.port(), pki.caFile, ['-N', '--max-time', '1'], '/events');
      const ticks = r.stdout.match(/data: tick \d+/g) ?? [];
      assert.ok(ticks.length >= 5, `got ${ticks.length} events`);
    });

    void it('relays a WebSocket upgrade', async () => {
      const ws = new WebSocket(`wss://http1.l7.test:${edge.port()}/ws`, {
        dispatcher: new Agent({
          connect: { ca: pki.ca, lookup: (_h, _o, cb) => cb(null, [{ address: '127.0.0.1', family: 4 }]) },
        }),
      });
      const reply = await new Promise<string>((resolve, reject) => {
        ws.addEventListener('open', () => ws.send('hello through the edge'));
        ws.addEventListener('message', (e) => resolve(String(e.data)));
        ws.addEventListener('error', () => reject(new Error('websocket error')));
      });
      ws.close();
      assert.equal(reply, 'hello through the edge');
    });

    void it('gRPC through the edge: unary, three streaming kinds, trailers, large messages and deadlines', async () => {
      const client = grpcClient(edge.port(), 'grpc.l7.test', pki.ca);
      const unary = client.unary as Fn;
      const trailers: string[] = [];
      const echoed = await new Promise<Buffer>((resolve, reject) => {
        const call = unary.call(client, Buffer.from('ping'), (e: Error | null, v: Buffer) =>
          e ? reject(e) : resolve(v),
        );
        call.on('status', (s: grpc.StatusObject) =>
          trailers.push(String(s.metadata.get('x-edge-trailer')[0])),
        );
      });
      assert.equal(echoed.toString(), 'ping');
      const big = randomBytes(8 * 1024 * 1024);
      const bigEcho = await new Promise<Buffer>((resolve, reject) =>
        unary.call(client, big, (e: Error | null, v: Buffer) => (e ? reject(e) : resolve(v))),
      );
      assert.ok(bigEcho.equals(big));
      const failed = await new Promise<grpc.ServiceError>((resolve) =>
        unary.call(client, Buffer.from('fail'), (e: grpc.ServiceError) => resolve(e)),
      );
      assert.equal(failed.code, grpc.status.FAILED_PRECONDITION);
      assert.equal(failed.details, 'asked to fail');

      const stream = (client.serverStream as Fn).call(client, Buffer.from('50'));
      const items: string[] = [];
      for await (const item of stream as AsyncIterable<Buffer>) items.push(item.toString());
      assert.equal(items.length, 50);
      assert.equal(items[49], 'item-49');

      const counted = await new Promise<string>((resolve, reject) => {
        const call = (client.clientStream as Fn).call(client, (e: Error | null, v: Buffer) =>
          e ? reject(e) : resolve(v.toString()),
        );
        for (let i = 0; i < 20; i++) call.write(Buffer.alloc(1000));
        call.end();
      });
      assert.equal(counted, '20:20000');

      const bidi = (client.bidi as Fn).call(client) as unknown as grpc.ClientDuplexStream<Buffer, Buffer>;
      const replies: string[] = [];
      bidi.on('status', (s: grpc.StatusObject) => trailers.push(String(s.metadata.get('x-edge-trailer')[0])));
      const done = new Promise<void>((resolve) => bidi.on('end', () => resolve()));
      bidi.on('data', (b: Buffer) => {
        replies.push(b.toString());
        if (replies.length < 5) bidi.write(Buffer.from(String(replies.length)));
        else bidi.end();
      });
      bidi.write(Buffer.from('0'));
      await done;
      assert.deepEqual(replies, ['echo:0', 'echo:1', 'echo:2', 'echo:3', 'echo:4']);

      const started = performance.now();
      const deadline = await new Promise<grpc.ServiceError>((resolve) =>
        unary.call(
          client,
          Buffer.from('slow'),
          new grpc.Metadata(),
          { deadline: Date.now() + 200 },
          (e: grpc.ServiceError) => resolve(e),
        ),
      );
      assert.equal(deadline.code, grpc.status.DEADLINE_EXCEEDED);
      assert.ok(performance.now() - started < 1500);
      // The cancellation reaches the backend asynchronously; poll a bounded number of times.
      for (let i = 0; i < 100 && grpcBackend.cancelled.length === 0; i++)
        await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(grpcBackend.cancelled, ['unary'], 'deadline propagated to the backend');
      client.close();
      assert.deepEqual(trailers.slice(0, 2), ['present', 'present']);
    });

    void it('reloads a changed certificate without a restart and keeps serving', async () => {
      const servedSerial = () =>
        new Promise<string>((resolve, reject) => {
          const s = tlsConnect(
            { host: '127.0.0.1', port: edge.port(), servername: 'h2c.l7.test', ca: pki.ca },
            () => {
              resolve(s.getPeerCertificate().serialNumber);
              s.destroy();
            },
          );
          s.on('error', reject);
        });
      const first = await servedSerial();
      const next = await pki.issue('l7-next', ['*.l7.test']);
      await copyFile(next.keyFile, `${leaf.keyFile}.new`);
      await copyFile(next.certFile, `${leaf.certFile}.new`);
      const { rename } = await import('node:fs/promises');
      await rename(`${leaf.keyFile}.new`, leaf.keyFile);
      await rename(`${leaf.certFile}.new`, leaf.certFile);
      let now = first;
      for (let i = 0; i < 100 && now === first; i++) {
        await new Promise((r) => setTimeout(r, 20));
        now = await servedSerial();
      }
      assert.notEqual(now, first);
      assert.equal((await get('h2c.l7.test')).xff, '127.0.0.1');
    });

    void it('releases every terminated connection once clients close', async () => {
      const listener = edge.service.listener('main');
      for (let i = 0; i < 500 && (listener?.active ?? 0) > 0; i++)
        await new Promise((r) => setTimeout(r, 10));
      assert.equal(listener?.active, 0);
      await edge.expectMetric('gatehouse_edge_connections_active', { listener: 'main' }, 0);
    });

    // A listener of its own: the h2c backend drops its connection, which no other test should see.
    void describe('a backend failing in the middle of a response', () => {
      let failing: EdgeHarness;
      const failingBackends: Backend[] = [];

      before(async () => {
        const h2c = await startFailingBackend('h2c');
        const http1 = await startFailingBackend('http1');
        failingBackends.push(h2c, http1);
        failing = await startEdge({
          listeners: [testListener({ responseTimeout: '2s', http2Relay })],
          routes: [l7Route('fail-h2c', h2c, 'h2c', leaf), l7Route('fail-http1', http1, 'http1', leaf)],
        });
      });

      after(async () => {
        await failing[Symbol.asyncDispose]();
        for (const b of failingBackends) await b[Symbol.asyncDispose]();
      });

      void it('resets the HTTP/2 client stream, never ending it cleanly, when the backend resets or drops mid-body', async () => {
        const port = failing.port();
        // undefined: any reset code but NO_ERROR (a dropped connection has no code of its own).
        const cases = [
          ['fail-h2c', '/reset-internal', constants.NGHTTP2_INTERNAL_ERROR],
          ['fail-h2c', '/reset-cancel', constants.NGHTTP2_CANCEL],
          ['fail-h2c', '/drop', undefined],
          ['fail-http1', '/drop', undefined],
          ['fail-http1', '/drop-length', undefined],
        ] as const;
        for (const [id, path, code] of cases) {
          const host = `${id}.l7.test`;
          const s = connectHttp2(`https://${host}:${port}`, {
            createConnection: () =>
              tlsConnect({ host: '127.0.0.1', port, servername: host, ca: pki.ca, ALPNProtocols: ['h2'] }),
          });
          s.on('error', () => {});
          // A GET: the request ended, so an END_STREAM from the edge would close the stream at once
          // and drop a RST_STREAM after it: rstCode NO_ERROR. A non-zero rstCode is the RST_STREAM
          // with no END_STREAM before it. ('end' is no check: Node clients emit it on a CANCEL too.)
          const out = await h2Exchange(s, 'GET', path).done;
          s.close();
          const what = `${host}${path}`;
          assert.equal(out.timedOut, false, `${what}: the edge ended the stream`);
          assert.equal(out.status, 200, what);
          assert.ok('part\n'.startsWith(out.body), `${what}: ${JSON.stringify(out.body)}`);
          assert.notEqual(out.rstCode, constants.NGHTTP2_NO_ERROR, `${what}: reset, no END_STREAM first`);
          if (code !== undefined) assert.equal(out.rstCode, code, `${what}: the backend's reset code`);
        }
      });

      void it('cuts off the HTTP/1.1 client response, never ending it cleanly, when the backend resets or drops mid-body', async () => {
        const port = failing.port();
        const cases = [
          ['fail-h2c', '/reset-internal'],
          ['fail-h2c', '/reset-cancel'],
          ['fail-h2c', '/drop'],
          ['fail-http1', '/drop'],
          ['fail-http1', '/drop-length'],
        ] as const;
        for (const [id, path] of cases) {
          const host = `${id}.l7.test`;
          const outcome = await new Promise<string>((resolve) => {
            const req = httpsRequest(
              {
                host: '127.0.0.1',
                port,
                servername: host,
                headers: { host },
                path,
                ca: pki.ca,
                agent: false,
              },
              (res) => {
                res.on('error', () => {});
                res.resume();
                // complete: the whole body came (a last chunk, or content-length bytes).
                res.once('close', () =>
                  resolve(`${res.statusCode} ${res.complete ? 'complete' : 'cut off'}`),
                );
              },
            );
            req.setTimeout(2000, () => req.destroy(new Error('no answer in 2 s')));
            req.on('error', (error) => resolve(error.message));
            req.end();
          });
          assert.equal(outcome, '200 cut off', `${host}${path}`);
        }
      });
    });

    // streamIdleTimeout and maxStreamsPerClient on a listener of their own, on the relay (h2c
    // routes when http2Relay is on), the node:http2 path (http1 routes always, h2c routes when
    // it is off) and the HTTP/1.1 path. Tests run in order on one listener with a cap of 2: a
    // slot one of them leaks makes the next one that holds two requests fail.
    void describe('request limits: streamIdleTimeout and maxStreamsPerClient', () => {
      let limited: EdgeHarness;
      const holding: Record<string, HoldingBackend> = {};
      const HOSTS = ['idle-h2c.l7.test', 'idle-http1.l7.test'] as const;

      before(async () => {
        holding['idle-h2c.l7.test'] = await startHoldingBackend('h2c');
        holding['idle-http1.l7.test'] = await startHoldingBackend('http1');
        const route = (id: string, kind: 'h2c' | 'http1') => ({
          id,
          listener: 'main',
          host: `${id}.l7.test`,
          mode: 'l7',
          backend: holding[`${id}.l7.test`]?.address,
          backendProtocol: kind,
          certFile: leaf.certFile,
          keyFile: leaf.keyFile,
        });
        limited = await startEdge({
          listeners: [
            testListener({
              responseTimeout: '2s',
              streamIdleTimeout: '300ms',
              maxStreamsPerClient: 2,
              http2Relay,
            }),
          ],
          routes: [route('idle-h2c', 'h2c'), route('idle-http1', 'http1')],
        });
      });

      after(async () => {
        await limited[Symbol.asyncDispose]();
        for (const b of Object.values(holding)) await b[Symbol.asyncDispose]();
      });

      const backendOf = (host: string): HoldingBackend => {
        const b = holding[host];
        assert.ok(b !== undefined);
        return b;
      };

      const session = (host: string): ClientHttp2Session => {
        const port = limited.port();
        const s = connectHttp2(`https://${host}:${port}`, {
          createConnection: () =>
            tlsConnect({ host: '127.0.0.1', port, servername: host, ca: pki.ca, ALPNProtocols: ['h2'] }),
        });
        s.on('error', () => {});
        return s;
      };

      /** `gatehouse_edge_request_limits_total` of both routes for `reason`. */
      const expectLimited = async (reason: string, perRoute: number) => {
        for (const route of ['idle-h2c', 'idle-http1']) {
          await limited.expectMetric('gatehouse_edge_request_limits_total', { route, reason }, perRoute);
        }
      };

      const idleEvents = async (n: number) =>
        (
          await limited.events(
            'edge.request.limited',
            (e) => e.filter((x) => x.reason === 'stream-idle').length >= n,
          )
        ).filter((e) => e.reason === 'stream-idle');

      void it('answers 408 to an HTTP/2 request whose body stops coming, and cancels the backend request', async () => {
        for (const host of HOSTS) {
          const s = session(host);
          const r = h2Exchange(s, 'POST', '/sink', { body: 'part of a body', end: false });
          const out = await r.done;
          s.close();
          assert.equal(out.timedOut, false, `${host}: the edge ended the stream`);
          assert.equal(out.status, 408, host);
          assert.equal(out.body, 'Request timeout\n');
          // The relay's idle sweep ticks a quarter of the timeout apart and stamps frames with the
          // clock of its last tick: it may end a stream up to a tick early (here 75 ms).
          assert.ok(out.ms >= 200 && out.ms < 1500, `${host}: 408 after ${Math.round(out.ms)} ms`);
          assert.deepEqual(
            await backendOf(host).abortedSoon(1),
            ['/sink'],
            `${host}: backend request cancelled`,
          );
        }
        await expectLimited('stream-idle', 1);
        await limited.expectMetric(
          'gatehouse_edge_http_responses_total',
          { route: 'idle-h2c', status: '408' },
          1,
        );
        const events = await idleEvents(2);
        assert.deepEqual(events.map((e) => e.resource).toSorted(), ['route:idle-h2c', 'route:idle-http1']);
        assert.ok(events.every((e) => e.decision === 'deny' && e.clientIp === '127.0.0.1'));
      });

      void it('resets an HTTP/2 stream whose response began and then went quiet both ways', async () => {
        for (const host of HOSTS) {
          // A bidirectional stream (request body unfinished), then one whose request had ended.
          for (const [n, body] of [
            [2, { body: 'hello', end: false }],
            [3, undefined],
          ] as const) {
            const s = session(host);
            const r = h2Exchange(s, body === undefined ? 'GET' : 'POST', '/quiet', body);
            const started = await r.responded;
            const out = await r.done;
            s.close();
            const what = `${host} ${body === undefined ? 'GET' : 'POST'}`;
            assert.equal(out.timedOut, false, `${what}: the edge ended the stream`);
            assert.equal(out.status, 200, what);
            assert.equal(out.body, 'first\n', `${what}: what came before the quiet reached the client`);
            assert.equal(out.rstCode, constants.NGHTTP2_CANCEL, `${what}: reset with CANCEL`);
            const quiet = out.ms - started;
            assert.ok(
              quiet >= 200 && quiet < 1500,
              `${what}: reset ${Math.round(quiet)} ms after the response`,
            );
            const aborted = await backendOf(host).abortedSoon(n);
            assert.deepEqual(aborted, ['/sink', '/quiet', '/quiet'].slice(0, n), what);
          }
        }
        await expectLimited('stream-idle', 3);
        assert.equal((await idleEvents(6)).length, 6);
      });

      void it('answers 429 over HTTP/2 to a third request in flight from one address, on any connection, until slots are released', async () => {
        for (const host of HOSTS) {
          const backend = backendOf(host);
          const [a, b, c] = [session(host), session(host), session(host)];
          // The request ended, the response is slow: longer than streamIdleTimeout, still answered.
          const held = [
            h2Exchange(a, 'GET', '/hold'),
            h2Exchange(b, 'POST', '/hold', { body: 'all of it', end: true }),
          ];
          assert.equal(await backend.heldSoon(2), 2, `${host}: two requests held`);
          const third = await h2Exchange(c, 'GET', '/').done;
          assert.equal(third.status, 429, host);
          assert.equal(third.body, 'Too many requests\n');
          await new Promise((r) => setTimeout(r, 400));
          backend.release();
          for (const h of held) {
            const out = await h.done;
            assert.equal(out.status, 200, `${host}: held request answered`);
            assert.equal(out.body, 'held\n');
          }
          const next = await h2Exchange(c, 'GET', '/').done;
          assert.equal(next.status, 200, `${host}: slots released`);
          assert.equal(next.body, 'ok\n');
          for (const s of [a, b, c]) s.close();
        }
        await expectLimited('client-streams', 1);
        // Nothing above went idle: the held requests waited for their response within responseTimeout.
        await limited.expectMetric('gatehouse_edge_request_limits_total', { reason: 'stream-idle' }, 6);
        const events = await limited.events(
          'edge.request.limited',
          (e) => e.filter((x) => x.reason === 'client-streams').length >= 2,
        );
        assert.equal(events.filter((e) => e.reason === 'client-streams').length, 2);
      });

      void it('answers 429 over HTTP/1.1 to a third request in flight from one address while two keep-alive connections are held', async () => {
        for (const host of HOSTS) {
          const backend = backendOf(host);
          const agent = new HttpsAgent({ keepAlive: true, maxSockets: 3, ca: pki.ca });
          const get1 = (path: string) => http1Get(agent, limited.port(), host, path);
          const held = [get1('/hold'), get1('/hold')];
          assert.equal(await backend.heldSoon(2), 2, `${host}: two requests held`);
          const third = await get1('/');
          assert.equal(third.status, 429, host);
          assert.equal(third.body, 'Too many requests\n');
          backend.release();
          for (const h of held) assert.deepEqual(await h, { status: 200, body: 'held\n' }, host);
          // The slots came back with the responses: the same client is served again.
          assert.deepEqual(await get1('/'), { status: 200, body: 'ok\n' }, `${host}: slots released`);
          agent.destroy();
        }
        await expectLimited('client-streams', 2);
        await limited.expectMetric(
          'gatehouse_edge_http_responses_total',
          { route: 'idle-http1', status: '429' },
          2,
        );
      });
    });
  });
}
