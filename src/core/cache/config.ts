import { duration, type Infer, object, size, string } from '#core/config';
import type { Logger } from '#core/log';
import type { Metrics } from '#core/metrics';
import { createRedisInvalidationBus } from './invalidation-bus.ts';
import { type CacheClock, createMemoryCache } from './memory-cache.ts';
import type { Cache } from './port.ts';
import { createRedisCache } from './redis-cache.ts';
import { createTieredCache } from './tiered-cache.ts';

/** The `cache` section of gatehouse.yaml. */
export const cacheConfigSchema = object(
  {
    url: string(
      {
        description:
          'The shared cache. Empty: in memory, per replica. `redis://[:password@]host:6379[/db]` or `rediss://…`: Redis shared by every replica, with a local memory tier kept coherent by pub/sub.',
        secret: true,
      },
      { default: '', pattern: /^$|^rediss?:\/\/.+$/, format: 'empty or a "redis://" or "rediss://" URL' },
    ),
    maxBytes: size(
      'Memory the local cache may use (keys plus values); least recently used entries go first.',
      {
        default: '256MiB',
        min: 1024,
      },
    ),
    defaultTtl: duration('Lifetime of entries stored without one; "0s" keeps them until evicted.', {
      default: '0s',
      min: 0,
    }),
    keyPrefix: string('Prepended to every Redis key and channel, so deployments can share one Redis.', {
      default: 'gatehouse:',
      pattern: /^[A-Za-z0-9:_.-]{0,64}$/,
      format: 'up to 64 letters, digits, ":", "_", "." or "-"',
    }),
    localTtl: duration(
      'With Redis: longest time a replica trusts its local copy, the bound on staleness if an invalidation is lost.',
      { default: '30s', min: 1 },
    ),
    connectTimeout: duration('With Redis: how long to wait for a connection.', { default: '2s', min: 1 }),
    commandTimeout: duration('With Redis: how long one command may take before the read counts as a miss.', {
      default: '1s',
      min: 1,
    }),
  },
  'The response cache: in memory by default, Redis for several replicas.',
);

/** The parsed `cache` section. */
export type CacheConfig = Infer<typeof cacheConfigSchema>;

/** What createCache needs besides its section. */
export interface CreateCacheOptions {
  readonly clock?: CacheClock;
  readonly log?: Logger;
  readonly metrics?: Metrics;
}

/**
 * Builds the configured cache: memory when `url` is empty; otherwise Redis behind a local
 * memory tier, with invalidations broadcast on `<keyPrefix>cache:invalidate`.
 */
export function createCache(config: CacheConfig, options: CreateCacheOptions = {}): Cache {
  const clock = options.clock === undefined ? {} : { clock: options.clock };
  const defaultTtl = config.defaultTtl === 0 ? {} : { defaultTtlMs: config.defaultTtl };
  const local = createMemoryCache({ maxBytes: config.maxBytes, ...defaultTtl, ...clock, name: 'memory' });
  if (config.url === '') return local;
  const log = options.log === undefined ? {} : { log: options.log };
  const connection = {
    url: config.url,
    connectTimeoutMs: config.connectTimeout,
    commandTimeoutMs: config.commandTimeout,
    ...log,
  };
  const remote = createRedisCache({
    ...connection,
    ...defaultTtl,
    prefix: `${config.keyPrefix}cache:`,
    name: 'redis',
    ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
  });
  const bus = createRedisInvalidationBus({ ...connection, channel: `${config.keyPrefix}cache:invalidate` });
  return createTieredCache({ local, remote, bus, localTtlMs: config.localTtl, name: 'redis' });
}
