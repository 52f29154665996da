/** Hit, miss and eviction counters of one cache. */
export interface CacheStats {
  readonly hits: number;
  readonly misses: number;
  readonly evictions: number;
  readonly entries: number;
  readonly bytes: number;
  readonly maxBytes: number;
  /** Backend failures absorbed as misses or skipped writes (Redis down); 0 for memory. */
  readonly errors?: number;
}

export interface CacheSetOptions {
  /** Time to live in milliseconds; absent means until evicted. */
  readonly ttlMs?: number;
}

/**
 * The cache port: byte values (callers cache serialized, pre-compressed responses, not
 * objects), bounded by bytes, with invalidation by key and prefix that reaches every replica.
 */
export interface Cache {
  readonly name: string;
  get(key: string): Promise<Buffer | undefined>;
  set(key: string, value: Buffer, options?: CacheSetOptions): Promise<void>;
  delete(key: string): Promise<boolean>;
  /** Deletes every key starting with `prefix`, here and on every replica; returns how many were here. */
  deletePrefix(prefix: string): Promise<number>;
  /**
   * Returns the cached value or runs `load` once for all concurrent callers of the same key
   * (miss coalescing); a load that throws is not cached.
   */
  getOrLoad(key: string, load: () => Promise<Buffer>, options?: CacheSetOptions): Promise<Buffer>;
  stats(): CacheStats;
  /** Resolves when the backend answers (always for memory). */
  ping(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}
