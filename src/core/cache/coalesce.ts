import type { CacheSetOptions } from './port.ts';

/**
 * Runs one load per key for all concurrent callers (miss coalescing). A load that rejects is
 * not stored and every waiter gets its error. `forget(key)` detaches a load in flight so a
 * delete that races with it is not undone by the load storing its (now stale) value.
 */
export class LoadCoalescer {
  readonly #inflight = new Map<string, Promise<Buffer>>();

  /** Number of loads in flight (for tests and stats). */
  get size(): number {
    return this.#inflight.size;
  }

  /**
   * Returns the value of `lookup` (the cache read) or, when it misses, of `load`, stored with
   * `store`. Concurrent callers of one key share a single lookup and a single load.
   */
  run(
    key: string,
    lookup: ((key: string) => Promise<Buffer | undefined>) | undefined,
    load: () => Promise<Buffer>,
    store: (key: string, value: Buffer, options?: CacheSetOptions) => Promise<void>,
    options: CacheSetOptions | undefined,
  ): Promise<Buffer> {
    const running = this.#inflight.get(key);
    if (running !== undefined) return running;
    // Declared first: the body compares against it to know whether it is still the current load.
    let promise!: Promise<Buffer>;
    promise = (async () => {
      try {
        const hit = lookup === undefined ? undefined : await lookup(key);
        if (hit !== undefined) return hit;
        const value = await load();
        if (!Buffer.isBuffer(value)) {
          throw new TypeError(`The loader of cache key "${key}" must resolve to a Buffer`);
        }
        if (this.#inflight.get(key) === promise) await store(key, value, options);
        return value;
      } finally {
        if (this.#inflight.get(key) === promise) this.#inflight.delete(key);
      }
    })();
    this.#inflight.set(key, promise);
    return promise;
  }

  forget(key: string): void {
    this.#inflight.delete(key);
  }

  forgetPrefix(prefix: string): void {
    for (const key of this.#inflight.keys()) {
      if (key.startsWith(prefix)) this.#inflight.delete(key);
    }
  }
}

/** Throws RangeError for a TTL that is not a positive finite number of milliseconds. */
export function checkTtl(ttlMs: number | undefined, what: string): void {
  if (ttlMs !== undefined && !(Number.isFinite(ttlMs) && ttlMs > 0)) {
    throw new RangeError(`${what} must be a positive number of milliseconds, got "${ttlMs}"`);
  }
}
