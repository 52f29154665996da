/**
 * Connections from the L7 proxy to backends: one HTTP/2 session or one keep-alive agent per
 * backend. When a route sends PROXY v2, the header describes one client, so such connections
 * belong to that client connection and close with it. A route swap drains the connections of
 * backends no route names any more (`retain`).
 */
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import { type ClientHttp2Session, connect as connectHttp2 } from 'node:http2';
import { Agent as HttpsAgent } from 'node:https';
import { connect as connectTcp, isIP, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import type { Duplex } from 'node:stream';
import { backendKey, type EdgeRoute, splitHostPort } from '../model.ts';
import { encodeProxyV2 } from '../proxy-protocol.ts';
import type { EdgeMetrics } from '../metrics.ts';
import type { ConnectionInfo } from '../runtime.ts';
import { RelayPool } from './h2/relay.ts';

/** How to reach one backend for one client connection. */
export interface BackendTarget {
  readonly route: EdgeRoute;
  readonly info: ConnectionInfo;
  readonly connectTimeoutMs: number;
  /** Observes the TCP connect time (`gatehouse_edge_backend_dial_seconds`). */
  readonly dialTimer?: EdgeMetrics['dialSeconds'];
}

function isTls(route: EdgeRoute): boolean {
  return route.backendProtocol === 'h2' || route.backendProtocol === 'https';
}

function poolKey(target: BackendTarget): string {
  const base = backendKey(target.route);
  return target.route.backendProxyProtocol ? `${base}|conn:${target.info.id}` : base;
}

/**
 * Closes an agent's idle sockets now and each busy one once its request is done: Node's agent
 * destroys a freed socket that `keepSocketAlive` declines instead of pooling it.
 */
function drainAgent(agent: HttpAgent): void {
  agent.keepSocketAlive = () => false;
  for (const sockets of Object.values(agent.freeSockets))
    for (const socket of sockets ?? []) socket.destroy();
}

function newAgent(target: BackendTarget): HttpAgent {
  const options = { keepAlive: true, maxSockets: 512, maxFreeSockets: 64 };
  const agent: HttpAgent = isTls(target.route) ? new HttpsAgent(options) : new HttpAgent(options);
  // oxlint-disable-next-line typescript/no-unsafe-assignment -- createConnection is typed loosely by @types/node.
  (agent as unknown as { createConnection: ConnectionFactory }).createConnection = connectionFactory(target, [
    'http/1.1',
  ]);
  return agent;
}

/** `createConnection` of an http Agent or request: a socket, or undefined after `onCreate(error)`. */
export type ConnectionFactory = (
  options: unknown,
  onCreate: (error: Error | null, socket: Duplex) => void,
) => Duplex | undefined;

/**
 * A `createConnection` that dials the backend and hands a dial that cannot start (a CA file that
 * is gone) to `onCreate` as an error, which becomes the request's error (502): thrown, it would
 * escape from inside node:http as an uncaught exception and end the process.
 */
export function connectionFactory(target: BackendTarget, alpn: readonly string[]): ConnectionFactory {
  return (_options, onCreate) => {
    try {
      return dialBackend(target, alpn);
    } catch (error) {
      // node:http takes an error without a socket (its types ask for both).
      const failed = onCreate as (error: Error) => void;
      failed(error instanceof Error ? error : new Error(String(error)));
      return undefined;
    }
  };
}

/** Opens the raw transport: TCP, then the optional PROXY header, then TLS when required. */
export function dialBackend(target: BackendTarget, alpn: readonly string[]): Duplex {
  const { route, info } = target;
  const { host, port } = splitHostPort(route.backend);
  // Read first: a missing CA file throws before any socket exists, and nothing is left open.
  const ca =
    isTls(route) && route.backendCaFile !== undefined ? readFileSync(route.backendCaFile) : undefined;
  const tcp: Socket = connectTcp({ host, port, noDelay: true });
  const stop = target.dialTimer?.startTimer({ route: route.id });
  let connected = false;
  tcp.once('connect', () => {
    connected = true;
    stop?.({ outcome: 'ok' });
  });
  tcp.once('error', () => {
    if (!connected) stop?.({ outcome: 'error' });
  });
  tcp.setTimeout(target.connectTimeoutMs, () =>
    tcp.destroy(new Error(`Connect timeout to ${route.backend}`)),
  );
  tcp.once('connect', () => tcp.setTimeout(0));
  if (route.backendProxyProtocol) {
    tcp.write(
      encodeProxyV2({
        source: info.client,
        destination: info.local,
        ...(info.serverName === undefined ? {} : { authority: info.serverName }),
      }),
    );
  }
  if (!isTls(route)) return tcp;
  // The certificate is checked against `host`: a DNS name, sent as SNI too, or an IP address
  // (IPv6 as well), which gets no SNI (RFC 6066 §3) and must be in the certificate's IP
  // addresses. Without `host` Node would check an address against "localhost".
  return connectTls({
    socket: tcp,
    host,
    servername: isIP(host) === 0 ? host : '',
    ALPNProtocols: [...alpn],
    ...(ca === undefined ? {} : { ca }),
  });
}

const SESSIONS_PER_BACKEND = 4;

/**
 * HTTP/2 flow-control windows of both sessions, per stream (SETTINGS_INITIAL_WINDOW_SIZE) and
 * per connection: large gRPC messages must not wait for a WINDOW_UPDATE every 64 KiB.
 */
export const WINDOW_BYTES = 4 * 1024 * 1024;

/** Pools of backend connections shared by all listeners of the door. */
export class BackendPool {
  readonly #sessions = new Map<string, ClientHttp2Session>();
  readonly #agents = new Map<string, HttpAgent>();
  readonly #byConnection = new Map<number, string[]>();
  /** The backend (`backendKey`) of each session and agent key, for `retain`. */
  readonly #backendOf = new Map<string, string>();
  readonly #slotKeys = new WeakMap<EdgeRoute, readonly string[]>();
  /** Backends (`backendKey`) the routes name, from the last `retain`; undefined before it: all. */
  #live: ReadonlySet<string> | undefined;
  #next = 0;
  /** Backend connections of the HTTP/2 frame relay (ADR 0150). */
  readonly relay = new RelayPool((target) => dialBackend(target, ['h2']));

  /**
   * A live HTTP/2 session to an h2c or h2 backend. For a backend no route names since the last
   * `retain` (a request routed before the swap), a session of its own outside the pool, which
   * closes once the request made on it right away is done.
   */
  session(target: BackendTarget): ClientHttp2Session {
    if (this.#retired(target.route)) {
      const own = this.#connectSession(target);
      // Its caller's request is pending until the connection is up, and open right after.
      own.once('connect', () => setImmediate(() => own.close()));
      return own;
    }
    // Several sessions per backend spread streams over connections (one TCP connection's
    // ordering and the backend's per-session processing otherwise cap throughput).
    const key = this.#sessionKey(target);
    const existing = this.#sessions.get(key);
    if (existing !== undefined && !existing.closed && !existing.destroyed) return existing;
    const session = this.#connectSession(target);
    const forget = () => {
      if (this.#sessions.get(key) !== session) return;
      this.#sessions.delete(key);
      this.#backendOf.delete(key);
    };
    session.once('close', forget);
    session.once('goaway', forget);
    this.#sessions.set(key, session);
    this.#track(target, key);
    this.#backendOf.set(key, backendKey(target.route));
    return session;
  }

  #connectSession(target: BackendTarget): ClientHttp2Session {
    const scheme = isTls(target.route) ? 'https' : 'http';
    const session = connectHttp2(`${scheme}://${target.route.backend}`, {
      createConnection: () => dialBackend(target, ['h2']),
      settings: { initialWindowSize: WINDOW_BYTES },
    });
    session.on('error', () => {});
    session.once('connect', () => session.setLocalWindowSize(WINDOW_BYTES));
    return session;
  }

  /** The route names a backend no route named at the last `retain`. */
  #retired(route: EdgeRoute): boolean {
    return this.#live?.has(backendKey(route)) === false;
  }

  /** The pool slot of a request; shared backends' slot keys are built once per route. */
  #sessionKey(target: BackendTarget): string {
    if (target.route.backendProxyProtocol) return `${poolKey(target)}#0`;
    let keys = this.#slotKeys.get(target.route);
    if (keys === undefined) {
      const base = poolKey(target);
      keys = Array.from({ length: SESSIONS_PER_BACKEND }, (_, i) => `${base}#${i}`);
      this.#slotKeys.set(target.route, keys);
    }
    return keys[this.#next++ % SESSIONS_PER_BACKEND] ?? '';
  }

  /**
   * A keep-alive agent for an HTTP/1.1 backend (plain or TLS). For a backend no route names
   * since the last `retain` (a request routed before the swap), an agent of its own outside the
   * pool, whose sockets close once their request is done.
   */
  agent(target: BackendTarget): HttpAgent {
    if (this.#retired(target.route)) {
      const own = newAgent(target);
      drainAgent(own);
      return own;
    }
    const key = poolKey(target);
    let agent = this.#agents.get(key);
    if (agent === undefined) {
      agent = newAgent(target);
      this.#agents.set(key, agent);
      this.#track(target, key);
      this.#backendOf.set(key, backendKey(target.route));
    }
    return agent;
  }

  #track(target: BackendTarget, key: string): void {
    if (!target.route.backendProxyProtocol) return;
    const keys = this.#byConnection.get(target.info.id) ?? [];
    keys.push(key);
    this.#byConnection.set(target.info.id, keys);
  }

  /** Closes what belonged to one client connection (PROXY-protocol backends). */
  release(connectionId: number): void {
    for (const key of this.#byConnection.get(connectionId) ?? []) this.#drop(key, 'destroy');
    this.#byConnection.delete(connectionId);
  }

  /**
   * A route swap: drains the connections of backends none of `routes` names any more (a removed
   * route, or one that now names another backend), like a backend removed from an Envoy cluster
   * or an HAProxy server set to drain: idle ones close now, busy ones once their requests end,
   * and no new request gets them. A backend some route still names keeps its connections.
   */
  retain(routes: Iterable<EdgeRoute>): void {
    const live = new Set<string>();
    for (const route of routes) if (route.mode === 'l7') live.add(backendKey(route));
    this.#live = live;
    for (const [key, backend] of this.#backendOf) if (!live.has(backend)) this.#drop(key, 'drain');
    this.relay.retain(live);
  }

  /**
   * Takes a session or agent out of the pool. `drain` lets its requests end: a session's close()
   * sends GOAWAY and closes once its streams are done. `destroy` (the client connection of a
   * PROXY-protocol backend closed, or shutdown after the listeners drained) closes an agent's
   * sockets at once.
   */
  #drop(key: string, how: 'drain' | 'destroy'): void {
    this.#sessions.get(key)?.close();
    this.#sessions.delete(key);
    const agent = this.#agents.get(key);
    if (agent !== undefined) {
      if (how === 'drain') drainAgent(agent);
      else agent.destroy();
    }
    this.#agents.delete(key);
    this.#backendOf.delete(key);
  }

  close(): void {
    this.relay.close();
    for (const key of [...this.#sessions.keys(), ...this.#agents.keys()]) this.#drop(key, 'destroy');
  }
}
