import type { Clock } from '#core/clock';
import { GatewayError } from '#core/errors';
import { asOsvRecord, type OsvRecord } from './osv.ts';

export interface OsvClientOptions {
  /** Base URL of an OSV-compatible API; `/v1/querybatch` and `/v1/vulns/<id>` are appended. */
  readonly url: string;
  readonly timeoutMs: number;
  readonly cacheTtlMs: number;
  readonly clock: Clock;
  /** Most packages per querybatch request (the public API accepts 1000). */
  readonly maxBatch?: number;
  /** Most cached packages and records each (oldest dropped first). */
  readonly maxCacheEntries?: number;
}

interface Pending {
  readonly ecosystem: string;
  readonly name: string;
  readonly resolve: (ids: { id: string; modified: string }[]) => void;
  readonly reject: (e: unknown) => void;
}

class TtlCache<V> {
  readonly #map = new Map<string, { value: V; expires: number }>();
  readonly #max: number;
  constructor(max: number) {
    this.#max = max;
  }
  get(key: string, now: number): V | undefined {
    const hit = this.#map.get(key);
    if (hit === undefined || hit.expires <= now) return undefined;
    return hit.value;
  }
  set(key: string, value: V, expires: number): void {
    this.#map.delete(key);
    this.#map.set(key, { value, expires });
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value as string);
  }
}

/**
 * Client of the OSV `querybatch` API. Queries made in the same tick share one batch request;
 * answers are cached for `cacheTtlMs`; a 429 or 503 with `Retry-After` makes calls fail fast
 * (GW_ERR_VULNDB_RATE_LIMITED) until that time instead of hammering the service.
 */
export class OsvClient {
  readonly #o: OsvClientOptions;
  readonly #packages: TtlCache<OsvRecord[]>;
  readonly #records: TtlCache<OsvRecord>;
  #queue: Pending[] = [];
  #blockedUntil = 0;

  constructor(options: OsvClientOptions) {
    this.#o = options;
    this.#packages = new TtlCache(options.maxCacheEntries ?? 10_000);
    this.#records = new TtlCache(options.maxCacheEntries ?? 10_000);
  }

  /** Every record the service knows for a package (OSV ecosystem spelling, e.g. `PyPI`). */
  async recordsFor(ecosystem: string, name: string, signal?: AbortSignal): Promise<OsvRecord[]> {
    const key = `${ecosystem}\u0000${name}`;
    const now = this.#o.clock.now();
    const cached = this.#packages.get(key, now);
    if (cached !== undefined) return cached;
    const ids = await this.#enqueue(ecosystem, name);
    const records = await Promise.all(ids.map((v) => this.#record(v.id, v.modified, signal)));
    this.#packages.set(key, records, this.#o.clock.now() + this.#o.cacheTtlMs);
    return records;
  }

  #enqueue(ecosystem: string, name: string): Promise<{ id: string; modified: string }[]> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ ecosystem, name, resolve, reject });
      if (this.#queue.length === 1) setImmediate(() => void this.#flush());
    });
  }

  async #flush(): Promise<void> {
    const max = this.#o.maxBatch ?? 1000;
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, max);
      try {
        const results = await this.#querybatch(batch);
        batch.forEach((p, i) => p.resolve(results[i] ?? []));
      } catch (error) {
        for (const p of batch) p.reject(error);
      }
    }
  }

  async #querybatch(batch: readonly Pending[]): Promise<{ id: string; modified: string }[][]> {
    const out: { id: string; modified: string }[][] = batch.map(() => []);
    let queries = batch.map((p, i) => ({ i, page: undefined as string | undefined, p }));
    // Paginated answers carry `next_page_token`; follow them a bounded number of times.
    for (let round = 0; round < 10 && queries.length > 0; round++) {
      const body = {
        queries: queries.map((q) => ({
          package: { ecosystem: q.p.ecosystem, name: q.p.name },
          ...(q.page === undefined ? {} : { page_token: q.page }),
        })),
      };
      const json = (await this.#call('/v1/querybatch', { method: 'POST', body: JSON.stringify(body) })) as {
        results?: { vulns?: { id?: unknown; modified?: unknown }[]; next_page_token?: unknown }[];
      };
      const next: typeof queries = [];
      queries.forEach((q, k) => {
        const r = json.results?.[k];
        for (const v of r?.vulns ?? []) {
          if (typeof v.id === 'string')
            out[q.i]?.push({ id: v.id, modified: typeof v.modified === 'string' ? v.modified : '' });
        }
        if (typeof r?.next_page_token === 'string' && r.next_page_token !== '')
          next.push({ ...q, page: r.next_page_token });
      });
      queries = next;
    }
    return out;
  }

  async #record(id: string, modified: string, signal?: AbortSignal): Promise<OsvRecord> {
    const key = `${id}@${modified}`;
    const cached = this.#records.get(key, this.#o.clock.now());
    if (cached !== undefined) return cached;
    const record = asOsvRecord(
      await this.#call(`/v1/vulns/${encodeURIComponent(id)}`, { method: 'GET' }, signal),
    );
    if (record === undefined) {
      throw new GatewayError('GW_ERR_VULNDB_ONLINE_FAILED', {
        message: `OSV service answered an invalid record for "${id}"`,
      });
    }
    // A record keyed by id and `modified` never changes, so it outlives the package lists.
    this.#records.set(key, record, this.#o.clock.now() + Math.max(this.#o.cacheTtlMs, 86_400_000));
    return record;
  }

  async #call(path: string, init: { method: string; body?: string }, signal?: AbortSignal): Promise<unknown> {
    const now = this.#o.clock.now();
    if (now < this.#blockedUntil) {
      throw new GatewayError('GW_ERR_VULNDB_RATE_LIMITED', {
        message: `OSV service asked to wait until ${new Date(this.#blockedUntil).toISOString()}`,
        details: { retryAfterMs: this.#blockedUntil - now },
      });
    }
    const timeout = AbortSignal.timeout(this.#o.timeoutMs);
    const url = new URL(path.replace(/^\//, ''), this.#o.url.endsWith('/') ? this.#o.url : `${this.#o.url}/`);
    let response: Response;
    try {
      response = await fetch(url, {
        method: init.method,
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        ...(init.body === undefined ? {} : { body: init.body }),
        signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
      });
    } catch (cause) {
      throw new GatewayError('GW_ERR_VULNDB_ONLINE_FAILED', {
        message: `Cannot reach the OSV service for "${path}"`,
        cause,
      });
    }
    if (response.status === 429 || response.status === 503) {
      const after = Number(response.headers.get('retry-after'));
      this.#blockedUntil = now + (Number.isFinite(after) && after > 0 ? after * 1000 : 60_000);
      await response.body?.cancel();
      throw new GatewayError('GW_ERR_VULNDB_RATE_LIMITED', {
        message: `OSV service answered status ${response.status} for "${path}"`,
        details: { retryAfterMs: this.#blockedUntil - now },
      });
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new GatewayError('GW_ERR_VULNDB_ONLINE_FAILED', {
        message: `OSV service answered status ${response.status} for "${path}"`,
      });
    }
    try {
      return await response.json();
    } catch (cause) {
      throw new GatewayError('GW_ERR_VULNDB_ONLINE_FAILED', {
        message: `OSV service answered invalid JSON for "${path}"`,
        cause,
      });
    }
  }
}
