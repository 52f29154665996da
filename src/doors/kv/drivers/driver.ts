/**
 * The KvDriver port: what every backend (memory, SQLite, Redis, PostgreSQL, NATS JetStream KV)
 * implements, and what the contract suite in `contract.ts` checks for each of them.
 */

/** One stored value. `version` strictly increases per key, also across delete and re-create. */
export interface KvEntry {
  readonly key: string;
  readonly value: Uint8Array;
  readonly version: number;
  /** JSON text given at set time, or the empty string. */
  readonly metadata: string;
  /** Epoch milliseconds after which the key is gone; undefined when it does not expire. */
  readonly expiresAt: number | undefined;
}

/** Every driver call carries a deadline; an aborted signal ends the call with UNAVAILABLE. */
export interface CallOptions {
  readonly signal: AbortSignal;
}

export interface GetManyOptions extends CallOptions {
  /**
   * The most bytes the values found may hold in all. A driver stops reading once they pass it
   * and throws GW_ERR_KV_PAYLOAD_TOO_LARGE (`answerTooLarge`), so one call never makes the
   * process hold more than about this plus one value, however many keys it names.
   */
  readonly maxBytes: number;
}

export interface SetOptions extends CallOptions {
  /** Time to live in milliseconds; 0 or absent means no expiry. */
  readonly ttlMs?: number;
  readonly metadata?: string;
  /**
   * Compare-and-set: write only when the current version equals this; 0 means "only when the key
   * does not exist". A mismatch throws GW_ERR_KV_VERSION_CONFLICT and writes nothing.
   */
  readonly expectedVersion?: number;
}

export interface SetItem {
  readonly key: string;
  readonly value: Uint8Array;
  readonly ttlMs?: number;
  readonly metadata?: string;
}

export interface ListOptions extends CallOptions {
  /** Page size, at least 1. */
  readonly limit: number;
  /** The last key of the previous page; the page starts strictly after it. */
  readonly after?: string;
}

export interface ListPage {
  /** Keys in UTF-8 byte order, all starting with the prefix. */
  readonly keys: readonly string[];
  /** True when more keys may follow the last one of this page. */
  readonly more: boolean;
  /**
   * Where the next page starts (strictly after), when that is not the page's last key: a
   * driver whose scan is bounded may end a page short, even empty, past keys it skipped.
   */
  readonly resumeAfter?: string;
}

/** What `ttl` reports about a present key. */
export interface TtlInfo {
  readonly expires: boolean;
  /** Remaining milliseconds, 0 when the key does not expire. */
  readonly remainingMs: number;
}

/** A backend of the kv door. Namespaces are isolated: a key of one is never seen from another. */
export interface KvDriver {
  /** `memory`, `sqlite`, `redis`, `postgres` or `nats`; used as a metric label. */
  readonly kind: string;
  get(namespace: string, key: string, options: CallOptions): Promise<KvEntry | undefined>;
  /** Entries in the order of `keys`; undefined where a key is absent. */
  getMany(
    namespace: string,
    keys: readonly string[],
    options: GetManyOptions,
  ): Promise<(KvEntry | undefined)[]>;
  /** Writes and returns the new version once the backend confirmed it. */
  set(namespace: string, key: string, value: Uint8Array, options: SetOptions): Promise<number>;
  /** Writes items in order and returns their versions. */
  setMany(namespace: string, items: readonly SetItem[], options: CallOptions): Promise<number[]>;
  delete(namespace: string, key: string, options: CallOptions): Promise<boolean>;
  exists(namespace: string, key: string, options: CallOptions): Promise<boolean>;
  /** Sets a TTL on a present key; false when absent. `ttlMs` must be positive. */
  expire(namespace: string, key: string, ttlMs: number, options: CallOptions): Promise<boolean>;
  /** Undefined when the key is absent. */
  ttl(namespace: string, key: string, options: CallOptions): Promise<TtlInfo | undefined>;
  /** Removes the TTL of a present key; false when absent. */
  persist(namespace: string, key: string, options: CallOptions): Promise<boolean>;
  list(namespace: string, prefix: string, options: ListOptions): Promise<ListPage>;
  /** Resolves when the backend answers. */
  ping(options: CallOptions): Promise<void>;
  close(): Promise<void>;
}
