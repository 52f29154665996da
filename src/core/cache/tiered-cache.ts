import { checkTtl, LoadCoalescer } from './coalesce.ts';
import type { InvalidationBus } from './invalidation-bus.ts';
import type { MemoryCache } from './memory-cache.ts';
import type { Cache, CacheSetOptions, CacheStats } from './port.ts';

/** Options of the two-tier cache. */
export interface TieredCacheOptions {
  /** This replica's copy, consulted first. */
  readonly local: MemoryCache;
  /** The shared tier (Redis), the source of truth between replicas. */
  readonly remote: Cache;
  /** Carries deletes to every replica's local tier. */
  readonly bus: InvalidationBus;
  /**
   * Longest time a local copy is trusted (default 30 s): the bound on staleness should an
   * invalidation be lost in transit, which Redis pub/sub allows.
   */
  readonly localTtlMs?: number;
  readonly name?: string;
}

/**
 * A memory tier in front of a shared tier, kept coherent across replicas: every write and
 * delete is broadcast, and each replica drops its local copy on hearing it. While the bus is
 * disconnected the local tier is bypassed, and it is flushed when the bus comes back, because
 * messages sent in between are lost.
 */
export function createTieredCache(options: TieredCacheOptions): Cache {
  const { local, remote, bus } = options;
  const localTtlMs = options.localTtlMs ?? 30_000;
  checkTtl(localTtlMs, 'localTtlMs');
  const loads = new LoadCoalescer();
  // Bumped by every invalidation heard; a remote read that raced with one is not kept locally.
  let epoch = 0;
  let hits = 0;
  let misses = 0;
  let errors = 0;

  const stopMessages = bus.subscribe((message) => {
    epoch += 1;
    if (message.op === 'delete') {
      loads.forget(message.key);
      local.deleteSync(message.key);
    } else {
      loads.forgetPrefix(message.key);
      local.deletePrefixSync(message.key);
    }
  });
  const stopResets = bus.onReset(() => {
    epoch += 1;
    local.deletePrefixSync('');
  });

  const localTtl = (ttlMs: number | undefined) =>
    ttlMs === undefined ? localTtlMs : Math.min(ttlMs, localTtlMs);

  const get = async (key: string): Promise<Buffer | undefined> => {
    if (bus.connected) {
      const hit = local.getSync(key);
      if (hit !== undefined) {
        hits += 1;
        return hit;
      }
    }
    const seen = epoch;
    const value = await remote.get(key);
    if (value === undefined) {
      misses += 1;
      return undefined;
    }
    hits += 1;
    if (bus.connected && seen === epoch) local.setSync(key, value, { ttlMs: localTtlMs });
    return value;
  };

  const set = async (key: string, value: Buffer, setOptions?: CacheSetOptions): Promise<void> => {
    checkTtl(setOptions?.ttlMs, 'ttlMs');
    await remote.set(key, value, setOptions);
    // Other replicas may hold the previous value locally; tell them before keeping ours.
    try {
      await bus.publish('delete', key);
      if (bus.connected) local.setSync(key, value, { ttlMs: localTtl(setOptions?.ttlMs) });
    } catch {
      errors += 1;
      local.deleteSync(key);
    }
  };

  return {
    name: options.name ?? `tiered(${remote.name})`,
    get,
    set,
    async delete(key) {
      loads.forget(key);
      const here = local.deleteSync(key);
      const there = await remote.delete(key);
      await bus.publish('delete', key);
      return here || there;
    },
    async deletePrefix(prefix) {
      loads.forgetPrefix(prefix);
      local.deletePrefixSync(prefix);
      const removed = await remote.deletePrefix(prefix);
      await bus.publish('prefix', prefix);
      return removed;
    },
    getOrLoad: (key, load, setOptions) => loads.run(key, get, load, set, setOptions),
    stats(): CacheStats {
      const l = local.stats();
      return {
        hits,
        misses,
        evictions: l.evictions,
        entries: l.entries,
        bytes: l.bytes,
        maxBytes: l.maxBytes,
        errors: errors + (remote.stats().errors ?? 0),
      };
    },
    async ping(timeoutMs = 2000) {
      await remote.ping(timeoutMs);
      await bus.ready(timeoutMs);
    },
    async close() {
      stopMessages();
      stopResets();
      await bus.close();
      await remote.close();
      await local.close();
    },
  };
}
