import { once } from 'node:events';
import {
  constants,
  createSecureServer,
  type Http2SecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { createContextValues } from '@connectrpc/connect';
import type { ConnectRouter } from '@connectrpc/connect';
import type { Logger } from '#core/log';
import { anonymousClientKey } from '#core/ratelimit';
import type { KvService } from '#gen/gatehouse/kv/v1/kv_pb.ts';
import type { Gauge } from '#core/metrics';
import { peerCertificateInfo, type TlsContextProvider } from '#core/tls';
import { createGrpcDirect } from './grpc-direct.ts';
import type { CallPeer } from './guard.ts';
import type { KvMethods } from './service.ts';
import { base64Length, connectServiceOf, createKvHandler, PEER } from './transport.ts';

/**
 * HTTP/2 flow-control windows for what clients send: 1 MiB per stream and 8 MiB for the
 * connection, instead of the protocol's 64 KiB for both. With 64 KiB a client uploading a large
 * value, or several batches at once, waits for a WINDOW_UPDATE every 64 KiB. What the server
 * holds is bounded by `HeldBytes`, not by the windows: the door reads every stream as it arrives.
 */
const STREAM_WINDOW = 1024 * 1024;
/**
 * The largest header list a call may send (SETTINGS_MAX_HEADER_LIST_SIZE): as Envoy's default
 * (60 KiB), room for tokens of identity providers that list a user's groups. Each stream's header
 * octets count against `bufferedBytesPerIp` and `bufferedBytes` while it is open.
 */
const MAX_HEADER_LIST = 64 * 1024;
const SESSION_WINDOW = 8 * 1024 * 1024;

/** What an open stream costs beyond its header octets (objects, maps, the compat layer). */
const STREAM_OVERHEAD = 1024;

/** How long a session that had a stream reset mid-request has to answer a PING. */
const PROBE_TIMEOUT_MS = 2000;

/**
 * Request bytes held per client (core's anonymous client key: an IPv4 address or an IPv6 /64)
 * and in all, from a stream's HEADERS until the stream closes (its call answered). Without it, a
 * client that never authenticates could open 256 streams per connection, on 100 connections,
 * each sending up to `readMaxBytes` that the door keeps until the message is complete (about
 * 1.8 GiB from one connection in a review run). Either bound is at least one largest message,
 * so a lone large upload always fits.
 */
class HeldBytes {
  private total = 0;
  private readonly byClient = new Map<string, number>();

  take(
    client: string,
    n: number,
    limits: { readonly perIp: number; readonly total: number },
    floor: number,
  ): boolean {
    const held = this.byClient.get(client) ?? 0;
    if (held + n > Math.max(limits.perIp, floor) || this.total + n > Math.max(limits.total, floor))
      return false;
    this.byClient.set(client, held + n);
    this.total += n;
    return true;
  }

  give(client: string, n: number): void {
    if (n === 0) return;
    const left = (this.byClient.get(client) ?? n) - n;
    if (left <= 0) this.byClient.delete(client);
    else this.byClient.set(client, left);
    this.total -= n;
  }
}

/**
 * Open connections per client, counted before the handshake. A client is the core's anonymous
 * client key (an IPv4 address or an IPv6 /64), as for held bytes: one IPv6 host holds a whole
 * /64, and a cap per address would let it open that many connections from each of 2^64.
 */
export class ClientConnections {
  private readonly open = new Map<string, number>();

  /** Counts a connection from `ip`; its client key to `release`, or undefined past `cap`. */
  take(ip: string, cap: number): string | undefined {
    const client = anonymousClientKey(ip);
    const count = (this.open.get(client) ?? 0) + 1;
    if (count > cap) return undefined;
    this.open.set(client, count);
    return client;
  }

  release(client: string): void {
    const left = (this.open.get(client) ?? 1) - 1;
    if (left <= 0) this.open.delete(client);
    else this.open.set(client, left);
  }
}

// TLS 1.3 suites are all AEAD; naming them keeps the list explicit and CCM_8 out.
const TLS13_SUITES = 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256';

export interface KvListenerOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: TlsContextProvider;
  readonly handshakeTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly connectionsPerIp: () => number;
  /** Request bytes held at once per client address and in all (see HeldBytes). */
  readonly bufferedBytes: () => { readonly perIp: number; readonly total: number };
  /**
   * Largest request message in bytes; bigger ones get RESOURCE_EXHAUSTED. Read per stream, so a
   * reload applies to the streams that open after it.
   */
  readonly readMaxBytes: () => number;
  readonly service: typeof KvService;
  /** The methods, served over gRPC directly and over Connect/gRPC-Web through ConnectRPC. */
  readonly methods: KvMethods;
  readonly activeConnections: Gauge;
  readonly log: Logger;
}

export interface KvListener {
  /** `https://host:port`. */
  readonly url: string;
  readonly port: number;
  /** Stops accepting, asks every session to finish (GOAWAY), destroys what is left at `deadline`. */
  close(deadline: AbortSignal): Promise<void>;
}

/** What the listener knows of a connection: its caller, and its account of held bytes. */
interface SessionInfo {
  readonly peer: CallPeer;
  /** The core's anonymous client key of the address (an IPv4 address or an IPv6 /64). */
  readonly holder: string;
}

/** The connection's SessionInfo, derived once per HTTP/2 session. */
function sessionInfo(stream: ServerHttp2Stream, cache: WeakMap<Http2Session, SessionInfo>): SessionInfo {
  const session = stream.session;
  const cached = session === undefined ? undefined : cache.get(session);
  if (cached !== undefined) return cached;
  const socket = session?.socket as TLSSocket | undefined;
  const certificate =
    socket?.authorized === true ? peerCertificateInfo(socket.getPeerCertificate()) : undefined;
  const clientIp = socket?.remoteAddress ?? '';
  const info: SessionInfo = {
    peer: { clientIp, ...(certificate === undefined ? {} : { certificate }) },
    holder: anonymousClientKey(clientIp),
  };
  if (session !== undefined && socket !== undefined) cache.set(session, info);
  return info;
}

/**
 * node:http2 keeps only the first of several `authorization` headers (a singleton field) and
 * drops the rest; both protocol paths read the credentials from `headers`. The values are joined
 * here as for other repeated headers, so the guard sees that there were several and refuses them.
 */
function joinAuthorization(headers: IncomingHttpHeaders, rawHeaders: readonly string[]): void {
  let values: string[] | undefined;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i] !== 'authorization') continue;
    (values ??= []).push(rawHeaders[i + 1] ?? '');
  }
  if (values !== undefined && values.length > 1) headers.authorization = values.join(', ');
}

/**
 * The kv listener: HTTP/2 over TLS 1.3 only (ALPN h2, no HTTP/1.1 fallback), client
 * certificates requested but optional (JWT and API-key clients have none; an unverified one
 * is ignored), hot-reloaded certificates, a per-address connection cap counted before the
 * handshake, and handshake and idle timeouts against slowloris.
 */
export async function startKvListener(options: KvListenerOptions): Promise<KvListener> {
  const { log } = options;
  const infos = new WeakMap<Http2Session, SessionInfo>();
  const connections = new ClientConnections();
  const sockets = new Set<Socket>();
  const sessions = new Set<Http2Session>();
  // ConnectRPC fixes its message limit when its router is built: a reloaded limit builds another.
  let connect: { readonly maxBytes: number; readonly handle: ReturnType<typeof createKvHandler> } | undefined;
  const connectFor = (maxBytes: number) => {
    if (connect?.maxBytes !== maxBytes) {
      connect = {
        maxBytes,
        handle: createKvHandler({
          routes: (router: ConnectRouter) =>
            router.service(options.service, connectServiceOf(options.methods)),
          readMaxBytes: maxBytes,
          contextValues: (req) => createContextValues().set(PEER, sessionInfo(req.stream, infos).peer),
          log,
        }),
      };
    }
    return connect.handle;
  };
  const handler = (req: Http2ServerRequest, res: Http2ServerResponse) =>
    connectFor(base64Length(options.readMaxBytes()))(req, res);
  const held = new HeldBytes();
  const probing = new WeakSet<Http2Session>();
  /**
   * A client that goes away while node:http2 over TLS writes to it (here: the resets of a flood,
   * or of calls refused while the client was still sending) can leave the session stuck: the
   * write never completes, the session stops reading, never sees the socket close, and keeps its
   * streams and their held bytes until the idle timeout (a plain node:http2 server on Node 24
   * that resets 60 of 100 HEADERS-only streams of a client that then goes away stays stuck in
   * about one run in six). Such a session must answer a PING within PROBE_TIMEOUT_MS or it is
   * destroyed, which closes its streams.
   */
  const probe = (session: Http2Session | undefined) => {
    if (session === undefined || session.destroyed || session.closed || probing.has(session)) return;
    probing.add(session);
    const timer = setTimeout(() => {
      log.debug('kv session destroyed: no answer to a PING after a reset');
      session.destroy();
    }, PROBE_TIMEOUT_MS);
    timer.unref();
    const done = () => {
      clearTimeout(timer);
      probing.delete(session);
      session.off('close', done);
    };
    session.once('close', done);
    // No PING could be sent (too many unanswered): the timer still decides.
    session.ping((error) => {
      if (error === null) done();
    });
  };
  const direct = createGrpcDirect({ service: options.service, methods: options.methods, log });
  const server: Http2SecureServer = createSecureServer(
    {
      ...options.tls.serverOptions(),
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      ciphers: TLS13_SUITES,
      ALPNProtocols: ['h2'],
      allowHTTP1: false,
      requestCert: true,
      rejectUnauthorized: false,
      handshakeTimeout: options.handshakeTimeoutMs,
      unknownProtocolTimeout: 1000,
      settings: {
        maxConcurrentStreams: 256,
        maxHeaderListSize: MAX_HEADER_LIST,
        initialWindowSize: STREAM_WINDOW,
      },
      maxSessionMemory: 64,
    },
    handler,
  );
  // node:http2 serves `handler` through its compatibility layer, a 'stream' listener that builds
  // an Http2ServerRequest/Response pair per stream. gRPC calls with protobuf messages skip it
  // (grpc-direct.ts); every other stream is handed to it unchanged.
  const compat = server.listeners('stream');
  const [toCompat] = compat;
  if (compat.length !== 1 || toCompat === undefined) {
    throw new TypeError(`Expected one HTTP/2 compatibility listener, found ${compat.length}`);
  }
  server.removeAllListeners('stream');
  server.on(
    'stream',
    (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
      stream.setTimeout(options.idleTimeoutMs, () => stream.close(constants.NGHTTP2_CANCEL));
      joinAuthorization(headers, rawHeaders);
      const { session } = stream;
      const { peer, holder: client } = sessionInfo(stream, infos);
      // Read once per stream: a reload applies to the streams that open after it.
      const limits = options.bufferedBytes();
      const maxBytes = options.readMaxBytes();
      // An open stream holds its decoded header list until it closes: it is charged from the
      // start (about 1 KiB of bookkeeping plus the header octets), so HEADERS-only floods count.
      let taken = rawHeaders.reduce((n, h) => n + h.length, STREAM_OVERHEAD);
      let refused = false;
      const over = () => {
        refused = true;
        log.debug('kv stream reset: buffered request bytes', { clientIp: peer.clientIp });
        // A stream closed before any handler took it has no other 'error' listener.
        stream.on('error', () => undefined);
        // The reset leaves on the next turn, out of the session's read callback; and the session
        // must then prove it is alive (probe).
        setImmediate(() => {
          stream.close(constants.NGHTTP2_ENHANCE_YOUR_CALM);
          probe(session);
        });
      };
      // Either bound holds at least one largest message of any protocol (JSON's is base64).
      const floor = base64Length(maxBytes);
      if (!held.take(client, taken, limits, floor)) {
        taken = 0;
        over();
        return;
      }
      stream.on('data', (chunk: Buffer) => {
        if (stream.closed || refused) return;
        if (!held.take(client, chunk.length, limits, floor)) {
          over();
          return;
        }
        taken += chunk.length;
      });
      stream.once('close', () => held.give(client, taken));
      // An answer complete while the client is still sending (a call refused before its whole
      // request arrived, over gRPC or through ConnectRPC): the session must prove it is alive
      // (probe), or a client that stops there would keep the stream until the idle timeout.
      // Both paths then reset the stream with NO_ERROR once the answer is out (transport.ts,
      // grpc-direct.ts).
      stream.once('finish', () => {
        if (stream.readableEnded || stream.endAfterHeaders || refused) return;
        setImmediate(() => probe(session));
      });
      if (!direct(stream, headers, peer, maxBytes)) {
        Reflect.apply(toCompat, server, [stream, headers, flags, rawHeaders]);
      }
    },
  );
  const detach = options.tls.attach(server);
  server.on('connection', (socket: Socket) => {
    const ip = socket.remoteAddress ?? '';
    const client = connections.take(ip, options.connectionsPerIp());
    if (client === undefined) {
      log.debug('kv connection refused: per-address cap', { clientIp: ip });
      socket.destroy();
      return;
    }
    // Small request/response pairs on one multiplexed connection: Nagle would hold each answer.
    socket.setNoDelay(true);
    sockets.add(socket);
    options.activeConnections.inc();
    socket.once('close', () => {
      sockets.delete(socket);
      options.activeConnections.dec();
      connections.release(client);
    });
  });
  server.on('session', (session: Http2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    session.setLocalWindowSize(SESSION_WINDOW);
    // A session without any frame for the idle time (a slowloris holding a slot) is closed.
    session.setTimeout(options.idleTimeoutMs, () => session.destroy());
  });
  server.on('unknownProtocol', (socket: TLSSocket) => socket.destroy());
  server.on('tlsClientError', (error: Error) =>
    log.debug('kv TLS handshake failed', { reason: error.message }),
  );
  server.on('sessionError', (error: Error) => log.debug('kv session error', { reason: error.message }));
  server.listen(options.port, options.host);
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `https://${host}:${port}`,
    port,
    async close(deadline) {
      detach();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const session of sessions) session.close();
      const force = () => {
        for (const session of sessions) session.destroy(undefined, constants.NGHTTP2_CANCEL);
        for (const socket of sockets) socket.destroy();
      };
      if (deadline.aborted) force();
      else deadline.addEventListener('abort', force, { once: true });
      await closed;
      deadline.removeEventListener('abort', force);
    },
  };
}
