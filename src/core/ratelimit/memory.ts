import type { ConcurrencyLimiter, LimitDecision, Permit, RateLimiter, TokenBucketOptions } from './port.ts';

/** A time source in epoch milliseconds (structurally the core Clock). */
export interface LimiterClock {
  now(): number;
}

/** Options of the in-process token bucket. */
export interface MemoryRateLimiterOptions extends TokenBucketOptions {
  readonly clock?: LimiterClock;
  /** Most keys tracked at once (default 100 000); full buckets are evicted first. */
  readonly maxKeys?: number;
  /**
   * The buckets of a limiter this one replaces (its rate or burst was reloaded): clients keep
   * the tokens they had, capped at the new burst, instead of all starting full again.
   */
  readonly state?: MemoryBuckets;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

/** The bucket table of a memory limiter, by key; opaque outside this module. */
export type MemoryBuckets = Map<string, Bucket>;

const systemNow: LimiterClock = { now: () => Date.now() };

/** Throws RangeError for a rate or burst no bucket can have. */
export function checkBucketOptions(options: TokenBucketOptions): void {
  if (!(Number.isFinite(options.rate) && options.rate > 0)) {
    throw new RangeError(`rate must be a positive number of tokens per second, got "${options.rate}"`);
  }
  if (!(Number.isFinite(options.burst) && options.burst >= 1)) {
    throw new RangeError(`burst must be a number of at least 1, got "${options.burst}"`);
  }
}

/** Throws RangeError for a cost that is not positive, or that the bucket can never hold. */
export function checkCost(cost: number, burst: number): void {
  if (!(Number.isFinite(cost) && cost > 0))
    throw new RangeError(`cost must be a positive number, got "${cost}"`);
  if (cost > burst) {
    throw new RangeError(`cost "${cost}" exceeds the burst "${burst}" and could never be allowed`);
  }
}

/** Milliseconds until `missing` tokens have refilled at `rate` per second. */
export function refillMs(missing: number, rate: number): number {
  // The epsilon absorbs binary rounding (0.01 tokens at 10/s is 1.0000000000000009 ms).
  return Math.max(1, Math.ceil((missing * 1000) / rate - 1e-6));
}

/** How many keys to inspect for a full bucket before evicting the oldest one outright. */
const EVICTION_SCAN = 64;

/**
 * An in-process token bucket per key. The key table is bounded: a new key beyond `maxKeys`
 * first evicts a bucket that has refilled completely (forgetting it changes nothing), and only
 * when none is found among the oldest does it evict the least recently used one.
 */
export function createMemoryRateLimiter(options: MemoryRateLimiterOptions): RateLimiter & {
  readonly state: MemoryBuckets;
} {
  checkBucketOptions(options);
  const { rate, burst } = options;
  const clock = options.clock ?? systemNow;
  const maxKeys = options.maxKeys ?? 100_000;
  if (!Number.isSafeInteger(maxKeys) || maxKeys < 1) {
    throw new RangeError(`maxKeys must be a positive integer, got "${maxKeys}"`);
  }
  const buckets: MemoryBuckets = options.state ?? new Map();

  const level = (bucket: Bucket, now: number) =>
    Math.min(burst, bucket.tokens + (Math.max(0, now - bucket.updatedAt) * rate) / 1000);

  const makeRoom = (now: number) => {
    let scanned = 0;
    for (const [key, bucket] of buckets) {
      if (level(bucket, now) >= burst) {
        buckets.delete(key);
        return;
      }
      scanned += 1;
      if (scanned >= EVICTION_SCAN) break;
    }
    const oldest = buckets.keys().next().value;
    if (oldest !== undefined) buckets.delete(oldest);
  };

  return {
    state: buckets,
    take(key, cost = 1): Promise<LimitDecision> {
      try {
        checkCost(cost, burst);
      } catch (error) {
        return Promise.reject(error);
      }
      const now = clock.now();
      let bucket = buckets.get(key);
      if (bucket === undefined) {
        if (buckets.size >= maxKeys) makeRoom(now);
        bucket = { tokens: burst, updatedAt: now };
      } else {
        // Re-insert so the map's order is least recently used first.
        buckets.delete(key);
        bucket.tokens = level(bucket, now);
        bucket.updatedAt = now;
      }
      buckets.set(key, bucket);
      if (bucket.tokens >= cost) {
        bucket.tokens -= cost;
        return Promise.resolve({
          allowed: true,
          remaining: Math.floor(bucket.tokens),
          limit: burst,
          retryAfterMs: 0,
        });
      }
      return Promise.resolve({
        allowed: false,
        remaining: Math.floor(bucket.tokens),
        limit: burst,
        retryAfterMs: refillMs(cost - bucket.tokens, rate),
      });
    },
    reset(key) {
      buckets.delete(key);
      return Promise.resolve();
    },
  };
}

/** A permit whose `release` runs `free` once, however often it is called. */
export function oncePermit(free: () => void): Permit {
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      free();
    },
  };
}

/** Throws RangeError for a concurrency limit below 1. */
export function checkMax(max: number): void {
  if (!Number.isSafeInteger(max) || max < 1)
    throw new RangeError(`max must be a positive integer, got "${max}"`);
}

/** At most `max` concurrent permits per key, in this process. */
export function createMemoryConcurrencyLimiter(max: number): ConcurrencyLimiter {
  checkMax(max);
  const active = new Map<string, number>();
  return {
    tryAcquire(key) {
      const count = active.get(key) ?? 0;
      if (count >= max) return Promise.resolve(undefined);
      active.set(key, count + 1);
      return Promise.resolve(
        oncePermit(() => {
          const left = (active.get(key) ?? 1) - 1;
          if (left <= 0) active.delete(key);
          else active.set(key, left);
        }),
      );
    },
    active(key) {
      return Promise.resolve(active.get(key) ?? 0);
    },
  };
}
