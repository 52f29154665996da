import type { Cache } from '#core/cache';
import { decodeEntry, encodeEntry, type MetadataEntry } from './entry.ts';

/**
 * Keys and storage of filtered metadata in `core.cache` (memory, or memory + Redis shared by
 * replicas). Every key of one package starts with `reg:v1:<ecosystem>:<name>|`, so one prefix
 * deletion invalidates it everywhere; `|` cannot occur in a valid package name.
 */
export class MetadataCache {
  readonly #cache: Cache;
  readonly #inflight = new Map<string, Promise<unknown>>();
  #epoch = 0;
  readonly #decoded = new WeakMap<Buffer, MetadataEntry>();

  constructor(cache: Cache) {
    this.#cache = cache;
  }

  static prefix(ecosystem: string, name?: string): string {
    return name === undefined ? `reg:v1:${ecosystem}:` : `reg:v1:${ecosystem}:${name}|`;
  }

  /** The key of filtered bytes: package, variant, policy version, age cut-off and host. */
  docKey(
    ecosystem: string,
    name: string,
    variant: string,
    policyVersion: string,
    cutoff: number,
    host: string,
  ): string {
    return `${MetadataCache.prefix(ecosystem, name)}doc|${variant}|${policyVersion}|${cutoff}|${host}`;
  }

  /** The last good bytes, kept longer to answer while the uplink is down. */
  staleKey(ecosystem: string, name: string, variant: string, policyVersion: string, host: string): string {
    return `${MetadataCache.prefix(ecosystem, name)}stale|${variant}|${policyVersion}|${host}`;
  }

  /** Per-version facts (times, digests, upstream URLs) used to serve files. */
  indexKey(ecosystem: string, name: string): string {
    return `${MetadataCache.prefix(ecosystem, name)}index`;
  }

  async getEntry(key: string): Promise<MetadataEntry | undefined> {
    const raw = await this.#cache.get(key);
    if (raw === undefined) return undefined;
    // The memory tier hands back the stored buffer itself: its decoded form is kept beside it
    // (weakly, so it goes when the cache drops the buffer), and a hit parses nothing.
    const known = this.#decoded.get(raw);
    if (known !== undefined) return known;
    const entry = decodeEntry(raw);
    if (entry !== undefined) this.#decoded.set(raw, entry);
    // A frame that does not decode (a foreign writer, a truncated Redis value) is dropped, never served.
    if (entry === undefined) await this.#cache.delete(key);
    return entry;
  }

  /** Stores one entry under several keys (fresh and stale) from a single encoded frame. */
  async putEntry(
    entry: MetadataEntry,
    ...targets: readonly { readonly key: string; readonly ttlMs: number }[]
  ): Promise<void> {
    const frame = encodeEntry(entry);
    await Promise.all(targets.map((t) => this.#cache.set(t.key, frame, { ttlMs: t.ttlMs })));
  }

  async getJson<T>(key: string): Promise<T | undefined> {
    const raw = await this.#cache.get(key);
    if (raw === undefined) return undefined;
    try {
      return JSON.parse(raw.toString('utf8')) as T;
    } catch {
      await this.#cache.delete(key);
      return undefined;
    }
  }

  async putJson(key: string, value: unknown, ttlMs: number): Promise<void> {
    await this.#cache.set(key, Buffer.from(JSON.stringify(value)), { ttlMs });
  }

  /**
   * Counts invalidations in this process: a build that started before one must not store its
   * result after it (its late writes would undo the invalidation).
   */
  get epoch(): number {
    return this.#epoch;
  }

  /** Drops one package (or a whole ecosystem) here and on every replica. */
  invalidate(ecosystem: string, name?: string): Promise<number> {
    this.#epoch += 1;
    return this.#cache.deletePrefix(MetadataCache.prefix(ecosystem, name));
  }

  /** Runs `load` once for concurrent callers with the same key (miss coalescing in this process). */
  coalesce<T>(key: string, load: () => Promise<T>): Promise<T> {
    const running = this.#inflight.get(key) as Promise<T> | undefined;
    if (running !== undefined) return running;
    const p = load().finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, p);
    return p;
  }

  stats() {
    return this.#cache.stats();
  }
}
