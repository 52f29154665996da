/**
 * TLS termination for L7 routes of one listener: an HTTP/2 secure server (ALPN h2 and
 * http/1.1) that never listens itself; the listener hands it connections whose ClientHello it
 * already read, with those bytes put back in front of the socket.
 */
import {
  createServer as createHttpServer,
  type Server as HttpServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import {
  constants,
  createSecureServer,
  type Http2SecureServer,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { CertificateMaterial } from '../cert-store.ts';
import type { ConnectionInfo, EdgeRuntime, ListenerSettings } from '../runtime.ts';
import { type BackendPool, WINDOW_BYTES } from './backends.ts';
import { ClientStreams } from './client-streams.ts';
import { createDeadlineQueue } from './deadlines.ts';
import { ClientConnection, type RelayContext, relayable } from './h2/relay.ts';
import { proxyH2Stream } from './h2-stream.ts';
import { type ProxyContext, proxyRequest } from './http-proxy.ts';
import { proxyUpgrade } from './upgrade.ts';

/** Accepts routed connections for L7 routes. */
export interface L7Terminator {
  accept(socket: Socket, replay: Buffer, info: ConnectionInfo): void;
  /** Stops taking connections and asks open ones to finish (HTTP/2 GOAWAY, idle HTTP/1.1 closed). */
  close(): void;
}

interface Remote {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
}

// The TLS socket shares its TCP handle with the raw socket, so the peer address and port name the
// connection on both; that is how a request finds the routing decision made before TLS.
const keyOf = (s: Remote) => `${s.remoteAddress ?? ''}|${s.remotePort ?? 0}`;

/** The TLS + HTTP/2 server; routing already happened, SNICallback only picks the routed certificate. */
function createTlsServer(settings: ListenerSettings, runtime: EdgeRuntime): Http2SecureServer {
  return createSecureServer({
    allowHTTP1: true,
    minVersion: settings.minTlsVersion,
    handshakeTimeout: settings.preludeTimeoutMs,
    SNICallback: (name, cb) => {
      try {
        const route = runtime.table().match(settings.id, name)?.compiled.route;
        const context =
          route?.certFile === undefined || route.keyFile === undefined
            ? undefined
            : runtime.certificates.context(route.certFile, route.keyFile);
        cb(null, context);
      } catch (error) {
        cb(error instanceof Error ? error : new Error(String(error)));
      }
    },
    // Large gRPC messages: the default 64 KiB window would throttle them.
    settings: { initialWindowSize: WINDOW_BYTES },
  });
}

/**
 * Sends HTTP/2 streams to the raw-stream proxy and HTTP/1.1 (or no-ALPN) connections to a plain
 * HTTP server; returns that server.
 */
function routeRequests(
  server: Http2SecureServer,
  connections: ReadonlyMap<string, ConnectionInfo>,
  ctx: ProxyContext,
  settings: ListenerSettings,
  relay: ((socket: Socket, info: ConnectionInfo) => boolean) | undefined,
): HttpServer {
  // HTTP/1.1 (and no-ALPN) connections go to a plain HTTP server; HTTP/2 streams are proxied raw.
  const http1 = createHttpServer(
    {
      // RFC 9112 gives no deadline; HAProxy's `timeout http-request` is the model: from the first
      // byte of a request (or the connection's start) to the end of its head.
      headersTimeout: settings.requestHeaderTimeoutMs,
      // Bodies stream for as long as bytes flow (idleTimeout), as on the HTTP/2 paths.
      requestTimeout: 0,
      connectionsCheckingInterval: Math.max(
        10,
        Math.min(1000, Math.floor(settings.requestHeaderTimeoutMs / 4)),
      ),
    },
    (req: IncomingMessage, res: ServerResponse) => {
      const info = connections.get(keyOf(req.socket));
      if (info === undefined) res.destroy();
      else proxyRequest(ctx, info, req, res);
    },
  );
  http1.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const info = connections.get(keyOf(req.socket));
    if (info === undefined) socket.destroy();
    else proxyUpgrade(ctx.runtime, info, settings, req, socket, head);
  });
  http1.timeout = settings.idleTimeoutMs;
  // Node checks headersTimeout (and requestTimeout) only once the server emitted 'listening',
  // which a server that is handed its connections never does: without this a client trickling
  // a request head one byte at a time holds the connection for as long as it likes. The check
  // answers 408 (when no response is under way on the connection) and closes it.
  http1.emit('listening');
  // The routing decision of a session is looked up once, when the session starts, not per stream.
  const bySession = new WeakMap<object, ConnectionInfo>();
  server.on('session', (session: ServerHttp2Session) => {
    const info = connections.get(keyOf(session.socket));
    if (info !== undefined) bySession.set(session, info);
    // The connection window (RFC 9113 §6.9.2) is not covered by SETTINGS_INITIAL_WINDOW_SIZE.
    session.setLocalWindowSize(WINDOW_BYTES);
  });
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number) => {
    const info = stream.session === undefined ? undefined : bySession.get(stream.session);
    if (info === undefined) stream.close(constants.NGHTTP2_REFUSED_STREAM);
    else proxyH2Stream(ctx, info, stream, headers, (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0);
  });
  // allowHTTP1 keeps http/1.1 in the ALPN list; the dispatch below sends such connections to
  // the HTTP/1.1 server instead of the HTTP/2 server's compatibility layer.
  const h2Listeners = server.listeners('secureConnection') as ((socket: Socket) => void)[];
  server.removeAllListeners('secureConnection');
  server.on('secureConnection', (tlsSocket: Socket & { alpnProtocol?: string | false }) => {
    if (tlsSocket.alpnProtocol !== 'h2') {
      http1.emit('connection', tlsSocket);
      return;
    }
    const info = relay === undefined ? undefined : connections.get(keyOf(tlsSocket));
    if (info !== undefined && relay?.(tlsSocket, info) === true) return;
    for (const listener of h2Listeners) listener.call(server, tlsSocket);
  });
  return http1;
}

/** Creates the terminator of one listener. */
export function createL7Terminator(
  settings: ListenerSettings,
  runtime: EdgeRuntime,
  pool: BackendPool,
): L7Terminator {
  const connections = new Map<string, ConnectionInfo>();
  // The TLS socket takes over the raw socket's handle, after which the raw socket never emits
  // 'close' by itself; closing it when its TLS socket closes keeps counts and pools right.
  const raws = new Map<string, Socket>();
  let defaultMaterial: CertificateMaterial | undefined;
  // Without SNI the handshake uses the server's default context: make it the routed default's.
  const useDefault = (info: ConnectionInfo): boolean => {
    const route = runtime.table().byId(info.routeId)?.route;
    if (route?.certFile === undefined || route.keyFile === undefined) return false;
    const material = runtime.certificates.material(route.certFile, route.keyFile);
    if (material !== defaultMaterial) {
      server.setSecureContext({ ...material });
      defaultMaterial = material;
    }
    return true;
  };
  const server = createTlsServer(settings, runtime);
  const ctx: ProxyContext = {
    runtime,
    pool,
    connectTimeoutMs: settings.connectTimeoutMs,
    deadlines: createDeadlineQueue(settings.responseTimeoutMs),
    clientStreams: new ClientStreams(settings.maxStreamsPerClient),
    streamIdleTimeoutMs: settings.streamIdleTimeoutMs,
  };
  // HTTP/2 clients of h2c and h2 routes: the frame relay (ADR 0150) when the listener enables it.
  const relayed = new Set<ClientConnection>();
  const relayCtx: RelayContext = {
    runtime,
    deadlines: ctx.deadlines,
    connectTimeoutMs: settings.connectTimeoutMs,
    pool: pool.relay,
    clientStreams: ctx.clientStreams,
    clock: { now: performance.now() },
  };
  // The idle sweep of relayed streams: a tick a quarter of the timeout apart (at most a second),
  // which also advances the coarse clock streams stamp their frames with.
  const sweepEvery = Math.max(10, Math.min(1000, settings.streamIdleTimeoutMs / 4));
  const sweeper = settings.http2Relay
    ? setInterval(() => {
        const now = performance.now();
        relayCtx.clock.now = now;
        const cutoff = now - settings.streamIdleTimeoutMs;
        for (const connection of relayed) connection.sweepIdle(cutoff);
        ctx.clientStreams.prune();
      }, sweepEvery)
    : undefined;
  sweeper?.unref();
  const relay = settings.http2Relay
    ? (tlsSocket: Socket, info: ConnectionInfo): boolean => {
        const route = runtime.table().byId(info.routeId)?.route;
        if (route === undefined || !relayable(route)) return false;
        const connection = new ClientConnection(tlsSocket, info, relayCtx, (c) => relayed.delete(c));
        relayed.add(connection);
        tlsSocket.setTimeout(settings.idleTimeoutMs, () => {
          // Already closed by the relay and still open: the peer never closed its side.
          if (connection.closed) tlsSocket.destroy();
          else connection.close();
        });
        return true;
      }
    : undefined;
  const http1 = routeRequests(server, connections, ctx, settings, relay);
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  server.on('secureConnection', (tlsSocket: Socket) => {
    const raw = raws.get(keyOf(tlsSocket));
    tlsSocket.once('close', () => raw?.destroy());
  });
  server.on('tlsClientError', (error, socket) => {
    runtime.log.debug('TLS handshake failed', { listener: settings.id, error: error.message });
    socket.destroy();
    raws.get(keyOf(socket))?.destroy();
  });
  server.on('sessionError', () => {});
  server.setTimeout(settings.idleTimeoutMs);
  return {
    accept(socket, replay, info) {
      const key = keyOf(socket);
      connections.set(key, info);
      raws.set(key, socket);
      socket.once('close', () => {
        connections.delete(key);
        raws.delete(key);
        pool.release(info.id);
      });
      if (info.serverName === undefined && !useDefault(info)) {
        socket.resetAndDestroy();
        return;
      }
      // The TLS socket inherits allowHalfOpen from the raw one (on for L4 relays); an HTTP/2
      // session on a half-open socket would never close after the client's FIN.
      socket.allowHalfOpen = false;
      socket.unshift(replay);
      server.emit('connection', socket);
    },
    close() {
      clearInterval(sweeper);
      server.close();
      // GOAWAY lets in-flight streams finish and tells clients to open no new ones.
      for (const session of sessions) session.close();
      for (const connection of relayed) connection.drain();
      http1.close();
      http1.closeIdleConnections();
    },
  };
}
