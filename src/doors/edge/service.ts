/**
 * The edge data plane: listeners, the current route table and limits, and the loop that swaps in
 * new immutable tables when the database revision changes. Changes never restart a listener, so
 * open connections are not dropped.
 */
import type { AuditInput, AuditLog } from '#core/audit';
import type { LimiterFactory } from '#core/app';
import { serialRuns } from '#core/config';
import type { Logger } from '#core/log';
import type { Metrics } from '#core/metrics';
import type { RateLimiter } from '#core/ratelimit';
import { type BoundedAudit, createBoundedAudit } from './bounded-audit.ts';
import { type CertificateStore, createCertificateStore } from './cert-store.ts';
import type { EdgeConfig, EdgeListenerConfig } from './config.ts';
import { createFirewall, type Firewall } from './firewall.ts';
import { BackendPool } from './l7/backends.ts';
import { clientKey } from './l7/client-streams.ts';
import { createL7Terminator, type L7Terminator } from './l7/terminator.ts';
import { EdgeListener } from './listener.ts';
import { createEdgeMetrics, type EdgeMetrics } from './metrics.ts';
import { buildRouteTable, type RouteTable } from './route-table.ts';
import type { EdgeRuntime, ListenerSettings } from './runtime.ts';
import type { EdgeSnapshot, EdgeStore } from './store.ts';
import { type EdgePolicy, type EdgeRoute, type FieldProblem, parsePolicy, parseRoute } from './model.ts';

/** Backend failures audited one by one per second across the door; the rest are summarised. */
const AUDITED_BACKEND_FAILURES_PER_SECOND = 20;

/** What the service takes from the core. */
export interface EdgeDeps {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly audit: AuditLog;
  readonly limiters: LimiterFactory;
  readonly store: EdgeStore;
}

/** Turns a listener's configuration into its settings. */
export function listenerSettings(config: EdgeListenerConfig): ListenerSettings {
  return {
    id: config.id,
    host: config.host,
    port: config.port,
    proxyProtocol: config.proxyProtocol,
    trustedProxies: config.trustedProxies,
    preludeTimeoutMs: config.preludeTimeout,
    connectTimeoutMs: config.connectTimeout,
    idleTimeoutMs: config.idleTimeout,
    responseTimeoutMs: config.responseTimeout,
    requestHeaderTimeoutMs: config.requestHeaderTimeout,
    streamIdleTimeoutMs: config.streamIdleTimeout,
    maxStreamsPerClient: config.maxStreamsPerClient,
    maxHelloBytes: config.maxHelloBytes,
    minTlsVersion: config.minTlsVersion,
    http2Relay: config.http2Relay,
  };
}

function describeProblems(what: string, problems: readonly FieldProblem[]): string {
  return `${what}: ${problems.map((p) => `"${p.field}" must be ${p.expected}`).join('; ')}`;
}

/** Validates the configured routes and policies; throws RangeError naming the bad entry. */
export function configuredData(config: EdgeConfig): { routes: EdgeRoute[]; policies: EdgePolicy[] } {
  const routes = config.routes.map((raw, i) => {
    const route = parseRoute(raw);
    if (Array.isArray(route)) throw new RangeError(describeProblems(`edge.routes[${i}]`, route));
    if (!config.listeners.some((l) => l.id === route.listener)) {
      throw new RangeError(`edge.routes[${i}]: listener "${route.listener}" is not configured`);
    }
    return route;
  });
  const policies = config.policies.map((raw, i) => {
    const policy = parsePolicy(raw);
    if (Array.isArray(policy)) throw new RangeError(describeProblems(`edge.policies[${i}]`, policy));
    return policy;
  });
  buildRouteTable(routes, policies);
  return { routes, policies };
}

/** Why a listener could not bind, in words, with the system's code. */
function listenProblem(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'EADDRINUSE':
      return 'address already in use (EADDRINUSE)';
    case 'EACCES':
      return 'permission denied (EACCES): ports below 1024 need privileges';
    case 'EADDRNOTAVAIL':
      return 'no such address on this machine (EADDRNOTAVAIL)';
    default:
      return error instanceof Error ? error.message : String(error);
  }
}

export class EdgeService {
  readonly metrics: EdgeMetrics;
  readonly certificates: CertificateStore;
  readonly #deps: EdgeDeps;
  #config: EdgeConfig;
  #table: RouteTable = buildRouteTable([], []);
  #revision = -1;
  #limits = new Map<string, number>();
  #firewalls = new Map<string, Firewall>();
  readonly #rates = new Map<string, RateLimiter>();
  readonly #listeners = new Map<string, EdgeListener>();
  readonly #terminators: L7Terminator[] = [];
  readonly #pool = new BackendPool();
  #poller: NodeJS.Timeout | undefined;
  readonly #backendFailures: BoundedAudit;
  readonly #limitedRequests: BoundedAudit;

  constructor(deps: EdgeDeps, config: EdgeConfig) {
    this.#deps = deps;
    this.#config = config;
    this.metrics = createEdgeMetrics(deps.metrics);
    this.certificates = createCertificateStore(deps.log);
    this.#backendFailures = createBoundedAudit(
      { action: 'edge.backend.failed', perWindow: AUDITED_BACKEND_FAILURES_PER_SECOND, windowMs: 1000 },
      (event) => this.#record(event),
    );
    this.#limitedRequests = createBoundedAudit(
      { action: 'edge.request.limited', perWindow: AUDITED_BACKEND_FAILURES_PER_SECOND, windowMs: 1000 },
      (event) => this.#record(event),
    );
    this.#applyListenerConfig(config);
  }

  /** The current table (for the API and tests). */
  get table(): RouteTable {
    return this.#table;
  }

  listener(id: string): EdgeListener | undefined {
    return this.#listeners.get(id);
  }

  get listenerIds(): readonly string[] {
    return this.#config.listeners.map((l) => l.id);
  }

  /** Effective max connections of a listener (database override, else config). */
  maxConnections(id: string): number {
    return this.#limits.get(id) ?? this.#config.listeners.find((l) => l.id === id)?.maxConnections ?? 0;
  }

  /** Applies a new configuration's dynamic parts (firewall rules); throws RangeError when invalid. */
  reconfigure(config: EdgeConfig): void {
    this.#applyListenerConfig(config);
    this.#config = config;
  }

  #applyListenerConfig(config: EdgeConfig): void {
    const firewalls = new Map<string, Firewall>();
    for (const l of config.listeners) firewalls.set(l.id, createFirewall(l.firewall));
    this.#firewalls = firewalls;
    for (const l of config.listeners) {
      if (l.connectionRate.rate > 0 && !this.#rates.has(l.id)) {
        const limiter = this.#deps.limiters.tokenBucket(`edge-conn:${l.id}`, l.connectionRate);
        this.#rates.set(l.id, limiter);
      }
    }
  }

  /** Fire-and-forget: the audit port never throws into the data path. */
  #record(event: AuditInput): void {
    this.#deps.audit.record(event).catch((error: unknown) => this.#deps.log.warn('Audit failed', { error }));
  }

  #runtime(): EdgeRuntime {
    const { log } = this.#deps;
    return {
      log,
      metrics: this.metrics,
      certificates: this.certificates,
      audit: (event) => this.#record(event),
      backendFailed: (route, reason, clientIp) =>
        this.#backendFailures.record({
          resource: `route:${route.id}`,
          reason,
          clientIp,
          decision: 'error',
          stable: { backend: route.backend },
        }),
      requestLimited: (routeId, reason, clientIp) => {
        this.metrics.requestLimits.inc({ route: routeId, reason });
        this.#limitedRequests.record({
          resource: `route:${routeId}`,
          reason,
          clientIp,
          decision: 'deny',
          stable: {},
        });
      },
      table: () => this.#table,
      firewall: (id) => this.#firewalls.get(id) ?? createFirewall({ allow: [], deny: [] }),
      maxConnections: (id) => this.maxConnections(id),
      allowConnection: async (id, address) => {
        const limiter = this.#rates.get(id);
        if (limiter === undefined) return true;
        // Per client as the request limits count them: an IPv6 host holds a whole /64, and a
        // fresh address for every connection must not give it a fresh bucket.
        return (await limiter.take(clientKey(address))).allowed;
      },
    };
  }

  /** Builds and swaps in a table for a snapshot; keeps the old one when the snapshot is invalid. */
  apply(snapshot: EdgeSnapshot): void {
    try {
      const table = buildRouteTable(snapshot.routes, snapshot.policies, snapshot.revision);
      this.#loadCertificates(snapshot.routes);
      this.#table = table;
      // Connections to backends no route names any more drain (busy ones once their requests end).
      this.#pool.retain(snapshot.routes);
      this.#limits = new Map(snapshot.limits.map((l) => [l.listener, l.maxConnections]));
      this.#revision = snapshot.revision;
    } catch (error) {
      this.#deps.log.error('Edge routes rejected; keeping the previous table', { error });
      this.#revision = snapshot.revision;
      this.#deps.audit
        .record({
          actor: 'system',
          action: 'edge.routes.rejected',
          resource: 'edge:routes',
          decision: 'error',
          reason: error instanceof Error ? error.message : String(error),
        })
        .catch(() => {});
    }
  }

  /**
   * Loads the certificates of L7 routes ahead of their first handshake. One that cannot be
   * loaded (a file missing after a restart, or not yet on this replica) fails only its own
   * route's handshakes, each of which tries the files again, so a fixed file is picked up: it
   * never keeps every other route of the snapshot from serving.
   */
  #loadCertificates(routes: readonly EdgeRoute[]): void {
    for (const route of routes) {
      if (route.mode !== 'l7' || route.certFile === undefined || route.keyFile === undefined) continue;
      try {
        this.certificates.context(route.certFile, route.keyFile);
      } catch (error) {
        this.#deps.log.error('Edge route certificate cannot be loaded; its handshakes fail until it can', {
          route: route.id,
          certFile: route.certFile,
          error,
        });
        this.#record({
          actor: 'system',
          action: 'edge.route.certificate.failed',
          resource: `route:${route.id}`,
          decision: 'error',
          reason: error instanceof Error ? error.message : String(error),
        });
      }
    }
  }

  /**
   * Reloads from the database when its revision moved (always when `force`). A call made while a
   * reload is reading does not join it (it may have read before the caller's change, and the
   * API's change would then go live only at the next poll): it gets one more read after it,
   * shared by every call made meanwhile, forced if any of them was.
   */
  refresh(force = false): Promise<void> {
    return this.#refresh(force);
  }

  readonly #refresh = serialRuns(
    async (force: boolean) => {
      if (!force && (await this.#deps.store.revision()) === this.#revision) return;
      this.apply(await this.#deps.store.snapshot());
    },
    (queued, next) => queued || next,
  );

  async start(): Promise<void> {
    const seed = configuredData(this.#config);
    if (await this.#deps.store.seed(seed.routes, seed.policies)) {
      this.#deps.log.info('Seeded edge routes from configuration', { routes: seed.routes.length });
    }
    await this.refresh(true);
    const runtime = this.#runtime();
    for (const [i, config] of this.#config.listeners.entries()) {
      const settings = listenerSettings(config);
      const terminator = createL7Terminator(settings, runtime, this.#pool);
      this.#terminators.push(terminator);
      const listener = new EdgeListener(settings, runtime, terminator);
      await listener.listen().catch((cause: unknown) => {
        // Named by its key, as server.listen is: which of several listeners could not bind.
        const address = config.host.includes(':')
          ? `[${config.host}]:${config.port}`
          : `${config.host}:${config.port}`;
        throw new Error(`edge.listeners[${i}] "${config.id}" (listen ${address}): ${listenProblem(cause)}`, {
          cause,
        });
      });
      this.#listeners.set(settings.id, listener);
    }
    this.#poller = setInterval(() => {
      this.refresh().catch((error: unknown) => this.#deps.log.warn('Edge route poll failed', { error }));
    }, this.#config.pollInterval);
    this.#poller.unref();
  }

  async stop(deadline: AbortSignal): Promise<void> {
    if (this.#poller !== undefined) clearInterval(this.#poller);
    // Listeners stop accepting first (synchronously inside close), then terminated connections
    // are asked to finish, then everything open is awaited until the deadline.
    const draining = [...this.#listeners.values()].map((l) => l.close(deadline));
    for (const t of this.#terminators) t.close();
    this.#terminators.length = 0;
    await Promise.all(draining);
    this.#pool.close();
    this.#backendFailures.flush();
    this.#limitedRequests.flush();
    this.certificates.close();
    this.#listeners.clear();
  }
}
