/**
 * Real peers for edge tests: TLS and plain backends on 127.0.0.1:0, the curl and openssl CLIs,
 * and a raw TCP (or TLS) client that reports how and when the edge closed the connection.
 */
import { execFile } from 'node:child_process';
import {
  createServer as createHttpsServer,
  type Agent as HttpsAgent,
  request as httpsRequest,
} from 'node:https';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import type { Leaf } from './certs.ts';

const run = promisify(execFile);

export interface Backend extends AsyncDisposable {
  readonly port: number;
  readonly address: string;
}

function portOf(server: Server): number {
  const a = server.address();
  return a !== null && typeof a === 'object' ? a.port : 0;
}

async function listen(server: Server): Promise<void> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
}

function backendOf(server: Server): Backend {
  const port = portOf(server);
  return {
    port,
    address: `127.0.0.1:${port}`,
    async [Symbol.asyncDispose]() {
      (server as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** An HTTPS/1.1 backend answering `body` and echoing what it saw of the client in headers. */
export async function startHttpsBackend(leaf: Leaf, body: string): Promise<Backend> {
  const server = createHttpsServer({ cert: leaf.cert, key: leaf.key }, (req, res) => {
    res.setHeader('x-backend-saw-sni', (req.socket as Socket & { servername?: string }).servername ?? '');
    res.end(body);
  });
  await listen(server);
  return backendOf(server);
}

/** A TCP backend recording the bytes of each connection; `onConnection` may answer. */
export async function startRawBackend(
  onConnection: (socket: Socket, received: () => Buffer) => void = () => {},
): Promise<Backend & { readonly connections: Buffer[][] }> {
  const connections: Buffer[][] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    const chunks: Buffer[] = [];
    connections.push(chunks);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    onConnection(socket, () => Buffer.concat(chunks));
  });
  await listen(server);
  const base = backendOf(server);
  return {
    ...base,
    connections,
    async [Symbol.asyncDispose]() {
      for (const s of sockets) s.destroy();
      await base[Symbol.asyncDispose]();
    },
  };
}

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a CLI and never throws for a non-zero exit. */
export async function cli(file: string, args: readonly string[], timeoutMs = 10_000): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(file, [...args], {
      timeout: timeoutMs,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** curl to `https://<host>:<port><path>` resolved to 127.0.0.1, trusting `caFile`. */
export function curl(host: string, port: number, caFile: string, extra: readonly string[] = [], path = '/') {
  return cli('curl', [
    '-sS',
    '--max-time',
    '5',
    '--cacert',
    caFile,
    '--resolve',
    `${host}:${port}:127.0.0.1`,
    ...extra,
    `https://${host}:${port}${path}`,
  ]);
}

/** How the edge ended a raw connection. */
export interface RawOutcome {
  readonly closedAfterMs: number;
  readonly reset: boolean;
  readonly received: Buffer;
}

export interface RawExchangeOptions {
  readonly gapMs?: number;
  readonly giveUpMs?: number;
  readonly localAddress?: string;
  /** Speak TLS (ALPN http/1.1, any certificate) with this SNI; `chunks` go inside it. */
  readonly servername?: string;
  /** Sees everything received so far after each chunk the edge sends. */
  readonly onData?: (socket: Socket, received: Buffer) => void;
}

/**
 * Connects, writes `chunks` (each after `gapMs`), and resolves when the edge closes the
 * connection or `giveUpMs` passes (then `closedAfterMs` is Infinity).
 */
export function rawExchange(
  port: number,
  chunks: readonly Buffer[],
  options: RawExchangeOptions = {},
): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const started = performance.now();
    const received: Buffer[] = [];
    let reset = false;
    const address = {
      host: '127.0.0.1',
      port,
      noDelay: true,
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    };
    const socket =
      options.servername === undefined
        ? connect(address)
        : tlsConnect({
            ...address,
            servername: options.servername,
            rejectUnauthorized: false,
            ALPNProtocols: ['http/1.1'],
          });
    const giveUp = setTimeout(() => {
      socket.destroy();
      resolve({ closedAfterMs: Number.POSITIVE_INFINITY, reset, received: Buffer.concat(received) });
    }, options.giveUpMs ?? 3000);
    socket.on('data', (c: Buffer) => {
      received.push(c);
      options.onData?.(socket, Buffer.concat(received));
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET' || e.code === 'EPIPE') reset = true;
    });
    socket.on('close', () => {
      clearTimeout(giveUp);
      resolve({ closedAfterMs: performance.now() - started, reset, received: Buffer.concat(received) });
    });
    socket.on(options.servername === undefined ? 'connect' : 'secureConnect', () => void writeAll());
    const writeAll = async () => {
      for (const chunk of chunks) {
        if (socket.destroyed) return;
        // Waiting for each write to flush keeps chunks in separate TCP segments (no Nagle).
        await new Promise((r) => socket.write(chunk, r));
        if ((options.gapMs ?? 0) > 0) await new Promise((r) => setTimeout(r, options.gapMs));
      }
    };
  });
}

/** One HTTP/1.1 GET through `agent` (keep-alive), bounded by 2 s. */
export function http1Get(
  agent: HttpsAgent,
  port: number,
  host: string,
  path: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, servername: host, headers: { host }, path, agent, timeout: 2000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${path}: no answer in 2 s`)));
    req.on('error', reject);
    req.end();
  });
}
