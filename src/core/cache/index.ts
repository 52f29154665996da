/**
 * core/cache: the Cache port (memory LRU bounded by bytes, Redis) with prefix invalidation.
 * @module
 */
export type { Cache, CacheSetOptions, CacheStats } from './port.ts';
/**
 * The `cache` config section (`url`, `maxBytes`, `defaultTtl`, `keyPrefix`, `localTtl`,
 * timeouts) and `createCache(config, { clock, log, metrics })`: memory when `url` is empty,
 * otherwise Redis behind a coherent local memory tier.
 */
export { type CacheConfig, type CreateCacheOptions, cacheConfigSchema, createCache } from './config.ts';
/**
 * Broadcasts invalidations between replicas over Redis pub/sub; at most once, with a `reset`
 * signal after every (re)subscription so local copies are dropped when messages may be lost.
 */
export {
  createRedisInvalidationBus,
  type InvalidationBus,
  type InvalidationMessage,
  type RedisBusOptions,
} from './invalidation-bus.ts';
/**
 * The in-process LRU bounded by bytes (key + value sizes), with TTLs, stats, prefix deletes
 * and coalesced `getOrLoad`; its `getSync` allocates nothing, for hot paths.
 */
export {
  type CacheClock,
  createMemoryCache,
  type MemoryCache,
  type MemoryCacheOptions,
} from './memory-cache.ts';
/**
 * The Redis cache shared by replicas: Buffers, TTL via PX, prefix deletes via SCAN + UNLINK;
 * a failed read is a counted miss, a failed delete is GW_ERR_CACHE_UNAVAILABLE.
 */
export { createRedisCache, type RedisCacheOptions } from './redis-cache.ts';
/** Options for connecting to Redis (URL and timeouts). */
export type { RedisConnectionOptions } from './redis-client.ts';
/** A local memory tier in front of a shared tier, kept coherent by an InvalidationBus. */
export { createTieredCache, type TieredCacheOptions } from './tiered-cache.ts';
