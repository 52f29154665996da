import { once } from 'node:events';
import { createRequire } from 'node:module';
import { GatewayError } from '#core/errors';
import type { Logger } from '#core/log';
import type * as IORedis from 'ioredis';
import {
  createMemoryConcurrencyLimiter,
  createMemoryRateLimiter,
  type LimiterClock,
  type MemoryBuckets,
} from './memory.ts';
import type { ConcurrencyLimiter, RateLimiter, TokenBucketOptions } from './port.ts';
import { createRedisConcurrencyLimiter, createRedisRateLimiter } from './redis.ts';

/** Options of the limiter factory. */
export interface LimiterFactoryOptions {
  /** Redis shared by the replicas; absent or empty means limits are per process. */
  readonly redisUrl?: string;
  /** Prepended to Redis keys (default `gatehouse:`); limiter keys are `<prefix>rl:b:<name>:<key>` (buckets) and `<prefix>rl:c:<name>:<key>` (slots). */
  readonly keyPrefix?: string;
  /** Injected time (tests); on Redis, absent means the server's clock. */
  readonly clock?: LimiterClock;
  /** `open` (default) lets requests through while Redis is down; `closed` refuses them. */
  readonly failureMode?: 'open' | 'closed';
  readonly log?: Logger;
}

/**
 * Creates limiters by name; structurally the `LimiterFactory` of `#core/app` (not imported
 * from there, because core/app depends on core/http, which depends on this module), and owns
 * its Redis connection.
 */
export interface ClosableLimiterFactory {
  tokenBucket(name: string, options: TokenBucketOptions): RateLimiter;
  concurrency(name: string, max: number): ConcurrencyLimiter;
  /** The backend the limits live in. */
  readonly backend: 'memory' | 'redis';
  /** Resolves when the backend answers; rejects with GW_ERR_CACHE_UNAVAILABLE otherwise. */
  ping(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

// ioredis is loaded only when limits are shared: a process on per-process limits never pays
// for it in memory or start-up time.
const requireOptional = createRequire(import.meta.url);

const sameBucket = (a: TokenBucketOptions, b: TokenBucketOptions) => a.rate === b.rate && a.burst === b.burst;

/**
 * Creates limiters by name, in memory or on Redis. Asking twice for the same name and quota
 * returns the same limiter, so doors can look limiters up per request; a changed quota (a
 * config reload) gets a fresh limiter.
 */
export function createLimiterFactory(options: LimiterFactoryOptions = {}): ClosableLimiterFactory {
  const url = options.redisUrl ?? '';
  if (url !== '' && !/^rediss?:\/\//.test(url)) {
    throw new TypeError('The rate limiter Redis URL must start with "redis://" or "rediss://"');
  }
  const client =
    url === ''
      ? undefined
      : new (requireOptional('ioredis') as typeof IORedis).Redis(url, {
          // Fail fast: a limiter that waits for a dead Redis stalls every request behind it.
          enableOfflineQueue: false,
          maxRetriesPerRequest: 0,
          connectTimeout: 2000,
          commandTimeout: 1000,
          retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
          connectionName: 'gatehouse-ratelimit',
        });
  client?.on('error', () => {
    // Each failure is reported where it is absorbed (take/acquire); this keeps Node from crashing.
  });
  const prefix = `${options.keyPrefix ?? 'gatehouse:'}rl:`;
  const shared = {
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.log === undefined ? {} : { log: options.log }),
    ...(options.failureMode === undefined ? {} : { failureMode: options.failureMode }),
  };
  const buckets = new Map<
    string,
    { options: TokenBucketOptions; limiter: RateLimiter & { readonly state?: MemoryBuckets } }
  >();
  const pools = new Map<string, { max: number; limiter: ConcurrencyLimiter }>();

  return {
    backend: client === undefined ? 'memory' : 'redis',
    tokenBucket(name, bucket) {
      const known = buckets.get(name);
      if (known !== undefined && sameBucket(known.options, bucket)) return known.limiter;
      // A reloaded rate or burst keeps every client's tokens (in Redis they stay under the same
      // keys; in memory the new limiter takes over the old one's table).
      const state = known?.limiter.state;
      const limiter =
        client === undefined
          ? createMemoryRateLimiter({ ...bucket, ...shared, ...(state === undefined ? {} : { state }) })
          : createRedisRateLimiter({ ...bucket, ...shared, client, prefix: `${prefix}b:${name}:` });
      buckets.set(name, { options: { rate: bucket.rate, burst: bucket.burst }, limiter });
      return limiter;
    },
    concurrency(name, max) {
      const known = pools.get(name);
      if (known !== undefined && known.max === max) return known.limiter;
      const limiter =
        client === undefined
          ? createMemoryConcurrencyLimiter(max)
          : createRedisConcurrencyLimiter({ ...shared, client, max, prefix: `${prefix}c:${name}:` });
      pools.set(name, { max, limiter });
      return limiter;
    },
    async ping(timeoutMs = 2000) {
      if (client === undefined) return;
      let timer: NodeJS.Timeout | undefined;
      const ready = async () => {
        if (client.status !== 'ready') await once(client, 'ready');
        await client.ping();
      };
      try {
        await Promise.race([
          ready(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
      } catch (error) {
        throw new GatewayError('GW_ERR_CACHE_UNAVAILABLE', {
          message: 'The rate limiter cannot reach Redis',
          cause: error,
        });
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      if (client === undefined || client.status === 'end') return;
      try {
        await client.quit();
      } catch {
        client.disconnect();
      }
    },
  };
}
