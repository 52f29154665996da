/**
 * One edge listener: accept, limit, read the prelude under a deadline, firewall on the real client
 * address, route by SNI, then hand the connection to the L4 relay or the L7 terminator. Every
 * refusal is a TCP reset (no TLS alert), counted and audited.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { type CidrMatcher, createCidrMatcher } from '#core/auth';
import { normalizeIp } from './ip.ts';
import { relayL4 } from './l4.ts';
import type { L7Terminator } from './l7/terminator.ts';
import { splitHostPort } from './model.ts';
import { readPrelude } from './prelude.ts';
import { encodeProxyV2 } from './proxy-protocol.ts';
import { type BoundedAudit, createBoundedAudit } from './bounded-audit.ts';
import type { RouteMatch } from './route-table.ts';
import type { ConnectionInfo, EdgeRuntime, ListenerSettings } from './runtime.ts';

let nextConnectionId = 1;

/**
 * Refusals audited one by one per listener and second; beyond that a flood is audited as one
 * summary event per reason and second (docs/edge.md), while metrics count every refusal.
 */
const AUDITED_REFUSALS_PER_SECOND = 20;

/** The catalogued code recorded with each kind of refusal (the socket itself only sees a reset). */
const REFUSAL_CODES: Readonly<Record<Refusal, string>> = {
  'max-connections': 'GW_ERR_EDGE_CONNECTION_BLOCKED',
  'untrusted-proxy': 'GW_ERR_EDGE_PROXY_HEADER_INVALID',
  denied: 'GW_ERR_EDGE_CONNECTION_BLOCKED',
  'not-allowed': 'GW_ERR_EDGE_CONNECTION_BLOCKED',
  'rate-limited': 'GW_ERR_EDGE_CONNECTION_BLOCKED',
  'no-route': 'GW_ERR_EDGE_NO_ROUTE',
  'proxy-header': 'GW_ERR_EDGE_PROXY_HEADER_INVALID',
  'client-hello': 'GW_ERR_EDGE_CLIENT_HELLO_INVALID',
};

/** Why a connection was refused; metric label and audit reason. */
type Refusal =
  | 'max-connections'
  | 'untrusted-proxy'
  | 'denied'
  | 'not-allowed'
  | 'rate-limited'
  | 'no-route'
  | 'proxy-header'
  | 'client-hello';

export class EdgeListener {
  readonly settings: ListenerSettings;
  readonly #runtime: EdgeRuntime;
  readonly #trusted: CidrMatcher;
  readonly #server: Server;
  readonly #active = new Set<Socket>();
  readonly #l7: L7Terminator;
  readonly #refusals: BoundedAudit;

  constructor(settings: ListenerSettings, runtime: EdgeRuntime, l7: L7Terminator) {
    this.settings = settings;
    this.#runtime = runtime;
    this.#refusals = createBoundedAudit(
      { action: 'edge.connection.blocked', perWindow: AUDITED_REFUSALS_PER_SECOND, windowMs: 1000 },
      (event) => runtime.audit(event),
    );
    this.#trusted = createCidrMatcher(settings.trustedProxies);
    this.#l7 = l7;
    this.#server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.#accept(socket));
  }

  /** Open connections right now. */
  get active(): number {
    return this.#active.size;
  }

  /** The bound port (after `listen`). */
  get port(): number {
    const address = this.#server.address();
    return address !== null && typeof address === 'object' ? address.port : 0;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.settings.port, this.settings.host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
  }

  /** Stops accepting, lets open connections finish until `deadline`, then destroys the rest. */
  async close(deadline: AbortSignal): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    if (this.#active.size > 0 && !deadline.aborted) {
      await new Promise<void>((resolve) => {
        const check = () => {
          if (this.#active.size === 0) resolve();
        };
        for (const socket of this.#active) socket.once('close', check);
        deadline.addEventListener('abort', () => resolve(), { once: true });
      });
    }
    for (const socket of this.#active) socket.destroy();
    this.#refusals.flush();
    await closed;
  }

  #refuse(
    socket: Socket,
    reason: Refusal,
    clientIp: string,
    detail: Readonly<Record<string, unknown>> = {},
  ): void {
    const { id } = this.settings;
    const { metrics } = this.#runtime;
    metrics.rejected.inc({ listener: id, reason });
    if (reason !== 'client-hello' && reason !== 'proxy-header' && reason !== 'no-route') {
      metrics.firewallBlocks.inc({ listener: id, reason });
    }
    socket.resetAndDestroy();
    this.#refusals.record({
      resource: `listener:${id}`,
      reason,
      clientIp,
      decision: 'deny',
      stable: { code: REFUSAL_CODES[reason] },
      details: detail,
    });
  }

  #accept(socket: Socket): void {
    const { id } = this.settings;
    const peer = normalizeIp(socket.remoteAddress ?? '');
    socket.on('error', () => {});
    if (this.#active.size >= this.#runtime.maxConnections(id)) {
      this.#refuse(socket, 'max-connections', peer, { max: this.#runtime.maxConnections(id) });
      return;
    }
    this.#active.add(socket);
    this.#runtime.metrics.connectionsActive.inc({ listener: id });
    socket.once('close', () => {
      this.#active.delete(socket);
      this.#runtime.metrics.connectionsActive.dec({ listener: id });
    });
    if (this.settings.proxyProtocol) {
      if (!this.#trusted.matches(peer)) {
        this.#runtime.metrics.proxyFailures.inc({ listener: id, reason: 'untrusted' });
        this.#refuse(socket, 'untrusted-proxy', peer);
        return;
      }
    } else if (!this.#passesFirewall(socket, peer)) {
      return;
    }
    this.#handle(socket, peer).catch((error: unknown) => {
      this.#runtime.log.error('Edge connection failed', { listener: id, error });
      socket.destroy();
    });
  }

  #passesFirewall(socket: Socket, address: string): boolean {
    const verdict = this.#runtime.firewall(this.settings.id).check(address);
    if (verdict.allowed) return true;
    this.#refuse(socket, verdict.reason, address);
    return false;
  }

  async #handle(socket: Socket, peer: string): Promise<void> {
    const { id } = this.settings;
    const prelude = await readPrelude(socket, {
      proxyProtocol: this.settings.proxyProtocol,
      deadlineMs: this.settings.preludeTimeoutMs,
      maxHelloBytes: this.settings.maxHelloBytes,
    });
    if (!prelude.ok) {
      if (prelude.reason === 'empty') {
        // Connected and closed without a byte: a load balancer's or orchestrator's TCP check
        // (HAProxy's `dontlognull`). Counted, not audited as a refusal.
        this.#runtime.metrics.emptyConnections.inc({ listener: id });
        socket.destroy();
        return;
      }
      const counter =
        prelude.stage === 'proxy' ? this.#runtime.metrics.proxyFailures : this.#runtime.metrics.helloFailures;
      counter.inc({ listener: id, reason: prelude.reason });
      const refusal = prelude.stage === 'proxy' ? 'proxy-header' : 'client-hello';
      this.#refuse(socket, refusal, peer, { reason: prelude.reason, detail: prelude.detail });
      return;
    }
    const fromProxy = prelude.proxy?.command === 'proxy' ? prelude.proxy.source : undefined;
    const client = fromProxy ?? { address: peer, port: socket.remotePort ?? 0 };
    const local = (prelude.proxy?.command === 'proxy' ? prelude.proxy.destination : undefined) ?? {
      address: normalizeIp(socket.localAddress ?? ''),
      port: socket.localPort ?? 0,
    };
    if (this.settings.proxyProtocol && !this.#passesFirewall(socket, client.address)) return;
    if (!(await this.#runtime.allowConnection(id, client.address))) {
      this.#refuse(socket, 'rate-limited', client.address);
      return;
    }
    // The check may wait on Redis, and a client reset meanwhile is gone (its 'close' may have
    // been emitted already): nothing is counted, dialled or terminated for it.
    if (socket.destroyed) return;
    const serverName = prelude.hello.serverName;
    const match = this.#runtime.table().match(id, serverName);
    if (match === undefined) {
      this.#refuse(socket, 'no-route', client.address, { serverName: serverName ?? null });
      return;
    }
    const info: ConnectionInfo = {
      id: nextConnectionId++,
      listener: id,
      routeId: match.compiled.route.id,
      client,
      local,
      serverName,
    };
    this.#count(socket, match, info);
    if (match.compiled.route.mode === 'l7') {
      this.#l7.accept(socket, prelude.replay, info);
      return;
    }
    await this.#relay(socket, match, info, prelude.replay);
  }

  #count(socket: Socket, match: RouteMatch, info: ConnectionInfo): void {
    const { metrics } = this.#runtime;
    const labels = { listener: info.listener, route: info.routeId };
    metrics.connectionsTotal.inc({ ...labels, mode: match.compiled.route.mode, match: match.kind });
    metrics.routeConnectionsActive.inc(labels);
    socket.once('close', () => metrics.routeConnectionsActive.dec(labels));
  }

  async #relay(socket: Socket, match: RouteMatch, info: ConnectionInfo, replay: Buffer): Promise<void> {
    const route = match.compiled.route;
    const { host, port } = splitHostPort(route.backend);
    const preamble = route.backendProxyProtocol
      ? encodeProxyV2({
          source: info.client,
          destination: info.local,
          ...(info.serverName === undefined ? {} : { authority: info.serverName }),
        })
      : undefined;
    const outcome = await relayL4(socket, {
      host,
      port,
      routeId: route.id,
      connectTimeoutMs: this.settings.connectTimeoutMs,
      idleTimeoutMs: this.settings.idleTimeoutMs,
      replay,
      metrics: this.#runtime.metrics,
      ...(preamble === undefined ? {} : { preamble }),
    });
    if (!outcome.connected && outcome.reason !== 'client-closed')
      this.#runtime.backendFailed(route, outcome.reason, info.client.address);
  }
}
