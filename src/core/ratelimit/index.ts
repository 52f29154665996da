/**
 * core/ratelimit: token buckets and concurrency limiters, in memory or on Redis.
 * @module
 */
export type { ConcurrencyLimiter, LimitDecision, Permit, RateLimiter, TokenBucketOptions } from './port.ts';
/**
 * `createLimiterFactory({ redisUrl?, keyPrefix?, clock?, failureMode? })` implements the
 * LimiterFactory of `#core/app`: per-process limits without Redis, shared ones with it.
 */
export { type ClosableLimiterFactory, createLimiterFactory, type LimiterFactoryOptions } from './factory.ts';
/**
 * In-process limiters: a token bucket per key with a bounded key table (full buckets are
 * evicted first) and a concurrency limiter whose permits release exactly once.
 */
export {
  createMemoryConcurrencyLimiter,
  createMemoryRateLimiter,
  type LimiterClock,
  type MemoryRateLimiterOptions,
} from './memory.ts';
/**
 * The limit key of an anonymous client: `ip:<address>`, or `ip6:<first four groups>::/64` (one
 * IPv6 host usually holds a whole /64).
 */
export { anonymousClientKey, ipv6Groups } from './client-key.ts';
