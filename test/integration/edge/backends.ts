/**
 * HTTP backends for L7 tests: an h2c or HTTP/1.1 server that echoes what it received (method,
 * path, forwarding headers, body) as JSON, streams server-sent events, or never answers; and one
 * that holds requests until told and counts its connections.
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  createServer as createH2cServer,
  createSecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
} from 'node:http2';
import { createHash } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Leaf } from './certs.ts';
import type { Backend } from './peers.ts';

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

async function echo(req: Req, response: Res): Promise<void> {
  // Both response types share these methods; one view keeps the calls callable.
  const res = response as ServerResponse;
  if (req.url === '/hang') return;
  if (req.url === '/events') {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    let n = 0;
    const timer = setInterval(() => {
      res.write(`id: ${n}\ndata: tick ${n}\n\n`);
      n++;
    }, 20);
    res.on('close', () => clearInterval(timer));
    return;
  }
  let bytes = 0;
  const hash = createHash('sha256');
  for await (const chunk of req as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    hash.update(chunk);
  }
  const body = JSON.stringify({
    protocol: req.httpVersion,
    method: req.method,
    path: req.url,
    host: req.headers.host ?? req.headers[':authority'],
    xff: req.headers['x-forwarded-for'],
    realIp: req.headers['x-real-ip'],
    proto: req.headers['x-forwarded-proto'],
    ppAuthority: req.headers['x-pp-authority'],
    spoofed: ['true-client-ip', 'x-client-ip', 'x-cluster-client-ip', 'x-forwarded-port']
      .filter((name) => req.headers[name] !== undefined)
      .join(','),
    bytes,
    sha256: hash.digest('hex'),
  });
  res.writeHead(200, { 'content-type': 'application/json', 'x-backend': 'echo' });
  res.end(body);
}

const handler = (req: Req, res: Res) => {
  echo(req, res).catch(() => (res as ServerResponse).destroy());
};

/** Accepts a WebSocket upgrade (RFC 6455 §4.2.2) and echoes text frames back unmasked. */
function acceptWebSocket(req: IncomingMessage, socket: Duplex): void {
  const key = req.headers['sec-websocket-key'] ?? '';
  const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\nx-saw-xff: ${String(req.headers['x-forwarded-for'])}\r\n\r\n`,
  );
  socket.on('data', (frame: Buffer) => {
    // Small masked client frames only: FIN+opcode, 7-bit length, 4-byte mask, payload.
    if (((frame[0] ?? 0) & 0x0f) === 0x8) {
      socket.end(Buffer.from([0x88, 0]));
      return;
    }
    const length = (frame[1] ?? 0) & 0x7f;
    const mask = frame.subarray(2, 6);
    const payload = Buffer.from(frame.subarray(6, 6 + length).map((b, i) => b ^ (mask[i % 4] ?? 0)));
    socket.write(Buffer.concat([Buffer.from([0x81, payload.length]), payload]));
  });
  socket.on('error', () => {});
}

function wrap(
  server: {
    listen: (...a: never[]) => unknown;
    close: (cb: () => void) => void;
    address: () => AddressInfo | string | null;
  },
  sessions: Set<{ destroy: () => void }>,
): Promise<Backend> {
  return new Promise((resolve) => {
    (server.listen as (port: number, host: string, cb: () => void) => void)(0, '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      resolve({
        port,
        address: `127.0.0.1:${port}`,
        async [Symbol.asyncDispose]() {
          for (const s of sessions) s.destroy();
          await new Promise<void>((r) => server.close(() => r()));
        },
      });
    });
  });
}

/** An echo backend speaking `h2c`, `http1`, or TLS (`h2` with ALPN h2 and http/1.1). */
export function startEchoBackend(kind: 'h2c' | 'http1' | 'h2', leaf?: Leaf): Promise<Backend> {
  const open = new Set<{ destroy: () => void }>();
  if (kind === 'http1') {
    const server = createHttpServer(handler);
    server.on('upgrade', acceptWebSocket);
    server.on('connection', (s) => {
      open.add(s);
      s.on('close', () => open.delete(s));
    });
    return wrap(server, open);
  }
  const server =
    kind === 'h2c'
      ? createH2cServer(handler)
      : createSecureServer({ cert: leaf?.cert, key: leaf?.key, allowHTTP1: true }, handler);
  server.on('session', (s) => {
    open.add(s);
    s.on('close', () => open.delete(s));
  });
  return wrap(server, open);
}

/**
 * A backend that holds requests (the request limits: maxStreamsPerClient, streamIdleTimeout;
 * route swaps) and counts its TCP connections.
 */
export interface HoldingBackend extends Backend {
  /** Waits (bounded) until `n` `/hold` requests are held; returns how many are. */
  heldSoon(n: number): Promise<number>;
  /** Waits (bounded) until `n` requests ended before their response did; returns their paths. */
  abortedSoon(n: number): Promise<readonly string[]>;
  /** Answers the held requests: 200 `held`. */
  release(): void;
  /** TCP connections open now. */
  readonly open: number;
  /** TCP connections accepted so far. */
  readonly accepted: number;
}

const until = async (done: () => boolean): Promise<void> => {
  for (let i = 0; i < 100 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
};

/**
 * `/hold`: answered when released; `/quiet`: 200 and a first chunk at once, then nothing;
 * anything else: 200 `ok` once the request body ended (a body that never ends, never).
 */
export async function startHoldingBackend(kind: 'h2c' | 'http1'): Promise<HoldingBackend> {
  const aborted: string[] = [];
  let held: (() => void)[] = [];
  const hold = (req: Req, response: Res) => {
    // Both response types share these members; one view keeps them callable.
    const res = response as ServerResponse;
    const path = req.url ?? '';
    res.on('close', () => {
      if (!res.writableEnded) aborted.push(path);
    });
    req.on('error', () => {});
    req.resume();
    if (path === '/hold') held.push(() => res.end('held\n'));
    else if (path === '/quiet') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first\n');
    } else req.on('end', () => res.end('ok\n'));
  };
  const server = kind === 'h2c' ? createH2cServer(hold) : createHttpServer(hold);
  // Keep-alive connections stay open on the backend's side: only the edge closes them.
  if (kind === 'http1') (server as ReturnType<typeof createHttpServer>).keepAliveTimeout = 60_000;
  const sockets = new Set<Socket>();
  let accepted = 0;
  server.on('connection', (socket: Socket) => {
    accepted++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    async heldSoon(n) {
      await until(() => held.length >= n);
      return held.length;
    },
    async abortedSoon(n) {
      await until(() => aborted.length >= n);
      return [...aborted];
    },
    release() {
      for (const answer of held.splice(0)) answer();
    },
    get open() {
      return sockets.size;
    },
    get accepted() {
      return accepted;
    },
    async [Symbol.asyncDispose]() {
      held = [];
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
