import type { AuditLog } from '#core/audit';
import type { Authenticator } from '#core/auth';
import type { Cache } from '#core/cache';
import type { Clock } from '#core/clock';
import type { Logger } from '#core/log';
import type { Metrics } from '#core/metrics';
import type { ConcurrencyLimiter, RateLimiter, TokenBucketOptions } from '#core/ratelimit';
import type { Action, Decision, Principal, Resource } from '#core/rbac';
import type { Database } from '#core/storage';
import type { HttpServer } from '#core/http';

export type { Clock } from '#core/clock';
export { systemClock } from '#core/clock';
export type { ConfigSection } from '#core/config';

/** The result of one readiness check. */
export interface HealthStatus {
  readonly ok: boolean;
  readonly detail?: string;
}

/** Readiness checks of dependencies and doors, reported at `/readyz` and `/api/health`. */
export interface HealthRegistry {
  /** Registers a named check (`database`, `cache`, `door:edge`, `uplink:npm`). */
  register(name: string, check: () => Promise<HealthStatus>): void;
  /** Runs every check with a deadline; a check that throws or times out is not ok. */
  check(
    timeoutMs?: number,
  ): Promise<{ readonly ok: boolean; readonly checks: Readonly<Record<string, HealthStatus>> }>;
}

/** Factories for limiters, in memory or on Redis depending on the cache configuration. */
export interface LimiterFactory {
  tokenBucket(name: string, options: TokenBucketOptions): RateLimiter;
  concurrency(name: string, max: number): ConcurrencyLimiter;
}

/**
 * Everything a door gets from the core. No globals: logger, clock, metrics, config, database
 * and cache reach a door only through this object (ARCHITECTURE.md rule 5).
 */
export interface CoreServices {
  readonly log: Logger;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly db: Database;
  readonly cache: Cache;
  readonly audit: AuditLog;
  readonly auth: Authenticator;
  readonly authorize: (principal: Principal, action: Action, resource: Resource) => Decision;
  readonly http: HttpServer;
  readonly limiters: LimiterFactory;
  readonly health: HealthRegistry;
  /** The data folder (`./.gatehouse` or `$GATEHOUSE_HOME`), absolute. */
  readonly dataDir: string;
  /** Aborted when the process begins to shut down. */
  readonly shutdown: AbortSignal;
}

/**
 * The lifecycle every door implements. `core/app` provisions and validates all doors, then
 * starts them in order and stops them in reverse; SIGTERM drains in-flight work first.
 */
export interface App extends AsyncDisposable {
  readonly name: string;
  /** Creates tables (migrations), metrics and routes; no listening yet. */
  provision(core: CoreServices): Promise<void>;
  /** Checks its configuration against the provisioned world; throws TypeError/RangeError. */
  validate(): Promise<void>;
  /** Opens listeners and background work. */
  start(): Promise<void>;
  /** Stops accepting, drains in-flight work until `deadline` aborts, then closes. */
  stop(deadline: AbortSignal): Promise<void>;
}
