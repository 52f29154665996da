/** The result of asking a limiter for capacity. */
export interface LimitDecision {
  readonly allowed: boolean;
  /** Tokens (or slots) left after this request. */
  readonly remaining: number;
  /** The configured capacity, for `RateLimit-Limit` style headers. */
  readonly limit: number;
  /** When not allowed: milliseconds until enough capacity returns. */
  readonly retryAfterMs: number;
}

/** A token bucket per key: `rate` tokens per second, up to `burst`. */
export interface RateLimiter {
  take(key: string, cost?: number): Promise<LimitDecision>;
  /** Forgets a key (e.g. after a successful login). */
  reset(key: string): Promise<void>;
}

export interface TokenBucketOptions {
  /** Tokens added per second. */
  readonly rate: number;
  /** Bucket capacity. */
  readonly burst: number;
}

/** A held concurrency slot; release exactly once. */
export interface Permit {
  release(): void;
}

/** At most `max` concurrent holders per key. */
export interface ConcurrencyLimiter {
  /** A permit, or undefined when the key is at its limit (never waits). */
  tryAcquire(key: string): Promise<Permit | undefined>;
  active(key: string): Promise<number>;
}
