import { GatewayError } from '#core/errors';
import type { Counter, Metrics } from '#core/metrics';
import { checkTtl, LoadCoalescer } from './coalesce.ts';
import type { Cache, CacheSetOptions, CacheStats } from './port.ts';
import {
  escapeGlob,
  openRedis,
  pingRedis,
  quitRedis,
  type RedisConnectionOptions,
  redactRedisUrl,
} from './redis-client.ts';

/** Options of the shared Redis cache. */
export interface RedisCacheOptions extends RedisConnectionOptions {
  /** Prepended to every key (e.g. `gatehouse:`), so several deployments can share a server. */
  readonly prefix: string;
  /** TTL of entries set without one; absent or 0 means none. */
  readonly defaultTtlMs?: number;
  readonly name?: string;
  /** Registers `gatehouse_cache_errors_total{cache,op}` when given. */
  readonly metrics?: Metrics;
}

/** Keys UNLINKed per round trip by deletePrefix. */
const UNLINK_BATCH = 500;

/**
 * A cache on Redis shared by every replica: values are raw bytes, TTL via PX, prefix deletes
 * via SCAN + UNLINK (never KEYS, which blocks the server). Reads and writes that fail are
 * counted and answered as a miss or a skipped write, so a Redis outage slows requests down
 * instead of failing them; deletes do fail, because a lost invalidation would serve stale data.
 */
export function createRedisCache(options: RedisCacheOptions): Cache {
  const defaultTtl = options.defaultTtlMs === 0 ? undefined : options.defaultTtlMs;
  checkTtl(defaultTtl, 'defaultTtlMs');
  const client = openRedis(options, 'cache');
  const name = options.name ?? 'redis';
  const label = redactRedisUrl(options.url);
  const { prefix } = options;
  const loads = new LoadCoalescer();
  const errorCounter: Counter | undefined = options.metrics?.counter({
    name: 'gatehouse_cache_errors_total',
    help: 'Cache backend failures absorbed as a miss or a skipped write, by cache and operation.',
    labelNames: ['cache', 'op'],
  });
  let hits = 0;
  let misses = 0;
  let errors = 0;
  const failed = (op: string, error: unknown) => {
    errors += 1;
    errorCounter?.inc({ cache: name, op });
    options.log?.debug('Cache operation failed', { cache: name, op, error: (error as Error).message });
  };
  const unavailable = (op: string, error: unknown) =>
    new GatewayError('GW_ERR_CACHE_UNAVAILABLE', {
      message: `Cannot ${op} in Redis "${label}"`,
      cause: error,
    });

  const get = async (key: string): Promise<Buffer | undefined> => {
    try {
      const value = await client.getBuffer(prefix + key);
      if (value === null) {
        misses += 1;
        return undefined;
      }
      hits += 1;
      return value;
    } catch (error) {
      failed('get', error);
      misses += 1;
      return undefined;
    }
  };

  const set = async (key: string, value: Buffer, setOptions?: CacheSetOptions): Promise<void> => {
    checkTtl(setOptions?.ttlMs, 'ttlMs');
    const ttl = setOptions?.ttlMs ?? defaultTtl;
    try {
      if (ttl === undefined) await client.set(prefix + key, value);
      else await client.set(prefix + key, value, 'PX', Math.ceil(ttl));
    } catch (error) {
      failed('set', error);
    }
  };

  const deletePrefix = async (keyPrefix: string): Promise<number> => {
    loads.forgetPrefix(keyPrefix);
    const match = `${escapeGlob(prefix + keyPrefix)}*`;
    let removed = 0;
    try {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', match, 'COUNT', 1000);
        cursor = next;
        for (let i = 0; i < keys.length; i += UNLINK_BATCH) {
          removed += await client.unlink(...keys.slice(i, i + UNLINK_BATCH));
        }
      } while (cursor !== '0');
    } catch (error) {
      throw unavailable(`delete keys under "${keyPrefix}"`, error);
    }
    return removed;
  };

  return {
    name,
    get,
    set,
    async delete(key) {
      loads.forget(key);
      try {
        return (await client.unlink(prefix + key)) > 0;
      } catch (error) {
        throw unavailable(`delete "${key}"`, error);
      }
    },
    deletePrefix,
    getOrLoad: (key, load, setOptions) => loads.run(key, get, load, set, setOptions),
    stats(): CacheStats {
      // Redis holds the entries; their count and size are the server's, not this replica's.
      return { hits, misses, evictions: 0, entries: 0, bytes: 0, maxBytes: 0, errors };
    },
    ping: (timeoutMs = 2000) => pingRedis(client, timeoutMs, label),
    close: () => quitRedis(client),
  };
}
