import { checkTtl, LoadCoalescer } from './coalesce.ts';
import type { Cache, CacheSetOptions, CacheStats } from './port.ts';

/** A time source in epoch milliseconds (structurally the core Clock). */
export interface CacheClock {
  now(): number;
}

/** Options of the in-process cache. */
export interface MemoryCacheOptions {
  /** Upper bound of the sum of key and value sizes, in bytes. */
  readonly maxBytes: number;
  /** TTL of entries set without one; absent or 0 means until evicted. */
  readonly defaultTtlMs?: number;
  readonly clock?: CacheClock;
  readonly name?: string;
}

/** One entry, also a node of the recency list (most recent at `head`). */
interface Entry {
  key: string;
  value: Buffer;
  size: number;
  /** Epoch ms after which the entry is gone; 0 = never. */
  expiresAt: number;
  prev: Entry | undefined;
  next: Entry | undefined;
}

const systemNow: CacheClock = { now: () => Date.now() };

/**
 * An LRU cache bounded by total bytes, for one process. `get` does one map lookup and a few
 * pointer moves and allocates nothing, because it sits on the registry's hot path. Values are
 * stored and returned as the same Buffer: callers must not mutate a Buffer after `set`.
 */
class LruMemoryCache implements Cache {
  readonly name: string;
  readonly #maxBytes: number;
  readonly #defaultTtlMs: number;
  readonly #clock: CacheClock;
  readonly #entries = new Map<string, Entry>();
  readonly #loads = new LoadCoalescer();
  #head: Entry | undefined;
  #tail: Entry | undefined;
  #bytes = 0;
  #hits = 0;
  #misses = 0;
  #evictions = 0;

  constructor(options: MemoryCacheOptions) {
    if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes < 1) {
      throw new RangeError(`maxBytes must be a positive integer, got "${options.maxBytes}"`);
    }
    const ttl = options.defaultTtlMs === 0 ? undefined : options.defaultTtlMs;
    checkTtl(ttl, 'defaultTtlMs');
    this.name = options.name ?? 'memory';
    this.#maxBytes = options.maxBytes;
    this.#defaultTtlMs = ttl ?? 0;
    this.#clock = options.clock ?? systemNow;
  }

  #unlink(entry: Entry): void {
    if (entry.prev === undefined) this.#head = entry.next;
    else entry.prev.next = entry.next;
    if (entry.next === undefined) this.#tail = entry.prev;
    else entry.next.prev = entry.prev;
    entry.prev = undefined;
    entry.next = undefined;
  }

  #pushFront(entry: Entry): void {
    entry.next = this.#head;
    if (this.#head !== undefined) this.#head.prev = entry;
    this.#head = entry;
    this.#tail ??= entry;
  }

  #remove(entry: Entry): void {
    this.#unlink(entry);
    this.#entries.delete(entry.key);
    this.#bytes -= entry.size;
  }

  /** The live entry for `key`, dropping it when expired. */
  #live(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== 0 && entry.expiresAt <= this.#clock.now()) {
      this.#remove(entry);
      return undefined;
    }
    return entry;
  }

  /** Synchronous lookup, for callers (like the tiered cache) that want no promise per hit. */
  getSync(key: string): Buffer | undefined {
    const entry = this.#live(key);
    if (entry === undefined) {
      this.#misses += 1;
      return undefined;
    }
    this.#hits += 1;
    if (entry !== this.#head) {
      this.#unlink(entry);
      this.#pushFront(entry);
    }
    return entry.value;
  }

  get(key: string): Promise<Buffer | undefined> {
    return Promise.resolve(this.getSync(key));
  }

  setSync(key: string, value: Buffer, options?: CacheSetOptions): void {
    checkTtl(options?.ttlMs, 'ttlMs');
    const size = Buffer.byteLength(key) + value.length;
    const existing = this.#entries.get(key);
    if (existing !== undefined) this.#remove(existing);
    // A value that can never fit is not cached rather than flushing everything else.
    if (size > this.#maxBytes) return;
    const ttl = options?.ttlMs ?? this.#defaultTtlMs;
    const entry: Entry = {
      key,
      value,
      size,
      expiresAt: ttl === 0 ? 0 : this.#clock.now() + ttl,
      prev: undefined,
      next: undefined,
    };
    this.#entries.set(key, entry);
    this.#pushFront(entry);
    this.#bytes += size;
    while (this.#bytes > this.#maxBytes && this.#tail !== undefined) {
      this.#remove(this.#tail);
      this.#evictions += 1;
    }
  }

  set(key: string, value: Buffer, options?: CacheSetOptions): Promise<void> {
    try {
      this.setSync(key, value, options);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  deleteSync(key: string): boolean {
    this.#loads.forget(key);
    const entry = this.#live(key);
    if (entry === undefined) return false;
    this.#remove(entry);
    return true;
  }

  delete(key: string): Promise<boolean> {
    return Promise.resolve(this.deleteSync(key));
  }

  deletePrefixSync(prefix: string): number {
    this.#loads.forgetPrefix(prefix);
    const now = this.#clock.now();
    let removed = 0;
    for (const entry of this.#entries.values()) {
      if (!entry.key.startsWith(prefix)) continue;
      if (entry.expiresAt === 0 || entry.expiresAt > now) removed += 1;
      this.#remove(entry);
    }
    return removed;
  }

  deletePrefix(prefix: string): Promise<number> {
    return Promise.resolve(this.deletePrefixSync(prefix));
  }

  getOrLoad(key: string, load: () => Promise<Buffer>, options?: CacheSetOptions): Promise<Buffer> {
    const hit = this.getSync(key);
    if (hit !== undefined) return Promise.resolve(hit);
    return this.#loads.run(key, undefined, load, (k, v, o) => this.set(k, v, o), options);
  }

  stats(): CacheStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
      entries: this.#entries.size,
      bytes: this.#bytes,
      maxBytes: this.#maxBytes,
      errors: 0,
    };
  }

  ping(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#entries.clear();
    this.#head = undefined;
    this.#tail = undefined;
    this.#bytes = 0;
    return Promise.resolve();
  }
}

/** The in-process cache type, with synchronous variants for hot paths. */
export type MemoryCache = Cache & {
  getSync(key: string): Buffer | undefined;
  setSync(key: string, value: Buffer, options?: CacheSetOptions): void;
  deleteSync(key: string): boolean;
  deletePrefixSync(prefix: string): number;
};

/** Creates an LRU cache bounded by `maxBytes` (key + value sizes) with optional TTLs. */
export function createMemoryCache(options: MemoryCacheOptions): MemoryCache {
  return new LruMemoryCache(options);
}
