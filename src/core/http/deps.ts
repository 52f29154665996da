import type { RateLimiter, TokenBucketOptions } from '#core/ratelimit';

/*
 * core/app's contracts (app.ts) import core/http, so core/http cannot import core/app back
 * without a cycle. These are the structural subsets it needs; the objects core/app builds
 * (ConfigSection, HealthRegistry, LimiterFactory, Clock) satisfy them as they are.
 */

/** A configuration section with change notification (core/app's ConfigSection). */
export interface Section<T> {
  current(): T;
  subscribe(listener: (next: T, previous: T) => void): () => void;
}

/** A value that never changes, as a Section. */
export function fixedSection<T>(value: T): Section<T> {
  return { current: () => value, subscribe: () => () => {} };
}

/** Readiness checks (core/app's HealthRegistry). */
export interface ReadinessChecks {
  check(timeoutMs?: number): Promise<{
    readonly ok: boolean;
    readonly checks: Readonly<Record<string, { readonly ok: boolean; readonly detail?: string }>>;
  }>;
}

/** Makes token buckets (core/app's LimiterFactory). */
export interface TokenBucketFactory {
  tokenBucket(name: string, options: TokenBucketOptions): RateLimiter;
}

/** Epoch milliseconds (core/app's Clock). */
export interface NowClock {
  now(): number;
}
