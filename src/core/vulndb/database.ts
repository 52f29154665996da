import { randomUUID } from 'node:crypto';
import type { Clock } from '#core/clock';
import { formatDuration } from '#core/config';
import type { Database } from '#core/storage';
import type { VulndbConfig } from './config.ts';
import { type ImportOptions, type ImportStats, importOsv } from './import.ts';
import { OsvClient } from './online.ts';
import {
  type AdvisorySummary,
  affectedEntryMatches,
  normalizePackageName,
  OSV_ECOSYSTEMS,
  type OsvRecord,
  schemeFor,
  summarizeAdvisory,
} from './osv.ts';
import { META, VulndbStore } from './store.ts';

/** The advisories of one package, asked per version (the shape core/policy consumes). */
export interface PackageAdvisories {
  readonly available: boolean;
  readonly unavailableReason?: string;
  /** When the database was last updated (epoch ms). */
  readonly updatedAt?: number;
  affecting(version: string): readonly AdvisorySummary[];
  fixedBy(version: string): readonly AdvisorySummary[];
}

/** How often the update stamp is reread, so an import by another process shows up. */
const GENERATION_RECHECK_MS = 5_000;

/** Status of the database for health checks and the CLI. */
export interface VulndbStatus {
  readonly advisories: number;
  readonly updatedAt?: number;
  readonly online: boolean;
}

export interface VulnerabilityDatabaseOptions {
  readonly db: Database;
  readonly clock: Clock;
  readonly config: VulndbConfig;
  /** Packages whose advisories stay in memory between imports (default 2000). */
  readonly maxCachedPackages?: number;
}

const unavailable = (reason: string, updatedAt?: number): PackageAdvisories => ({
  available: false,
  unavailableReason: reason,
  ...(updatedAt === undefined ? {} : { updatedAt }),
  affecting: () => [],
  fixedBy: () => [],
});

function packageView(
  ecosystem: string,
  name: string,
  records: readonly OsvRecord[],
  updatedAt?: number,
): PackageAdvisories {
  const wanted = normalizePackageName(ecosystem, name);
  const entries = records.flatMap((record) =>
    (record.affected ?? [])
      .filter((a) => a.package !== undefined && (a.package.ecosystem.split(':')[0] ?? '') === ecosystem)
      .filter((a) => normalizePackageName(ecosystem, a.package?.name ?? '') === wanted)
      .map((entry) => ({ record, entry, summary: summarizeAdvisory(record, entry) })),
  );
  const scheme = schemeFor(ecosystem);
  const same = (a: string, b: string) => {
    if (a === b) return true;
    const pa = scheme?.parse(a);
    const pb = scheme?.parse(b);
    return pa !== undefined && pb !== undefined && scheme?.compare(pa, pb) === 0;
  };
  const unique = (list: AdvisorySummary[]) => [...new Map(list.map((a) => [a.id, a])).values()];
  return {
    available: true,
    ...(updatedAt === undefined ? {} : { updatedAt }),
    affecting: (version) =>
      unique(entries.filter((e) => affectedEntryMatches(e.entry, version)).map((e) => e.summary)),
    fixedBy: (version) =>
      unique(
        entries
          .filter((e) =>
            (e.entry.ranges ?? []).some(
              (r) =>
                r.type !== 'GIT' && r.events.some((ev) => ev.fixed !== undefined && same(ev.fixed, version)),
            ),
          )
          .map((e) => e.summary),
      ),
  };
}

/**
 * The vulnerability database: OSV records in the core database, optionally completed by an
 * online OSV service. `forPackage` is what core/policy's vulnerability rule consults.
 */
export class VulnerabilityDatabase {
  readonly store: VulndbStore;
  readonly #clock: Clock;
  readonly #config: VulndbConfig;
  readonly #online: OsvClient | undefined;
  readonly #cache = new Map<string, { readonly value: Promise<PackageAdvisories>; readonly at: number }>();
  readonly #max: number;

  constructor(options: VulnerabilityDatabaseOptions) {
    this.store = new VulndbStore(options.db);
    this.#clock = options.clock;
    this.#config = options.config;
    this.#max = options.maxCachedPackages ?? 2000;
    const online = options.config.online;
    if (online.enabled && online.url === undefined) {
      throw new TypeError('vulndb.online.url is required when vulndb.online.enabled is true');
    }
    this.#online =
      online.enabled && online.url !== undefined
        ? new OsvClient({
            url: online.url,
            timeoutMs: online.timeout,
            cacheTtlMs: online.cacheTtl,
            clock: options.clock,
          })
        : undefined;
  }

  /** Creates the tables. */
  async migrate(): Promise<void> {
    await this.store.migrate();
  }

  /** Imports an OSV ZIP or directory, then records the update time and drops cached lookups. */
  async import(source: string, options: ImportOptions = {}): Promise<ImportStats> {
    const stats = await importOsv(this.store, source, options);
    await this.store.setMeta(META.updatedAt, String(this.#clock.now()));
    // Unique per import: two imports within one clock tick are still two generations.
    await this.store.setMeta(META.generation, randomUUID());
    this.#cache.clear();
    this.#generation = undefined;
    return stats;
  }

  #generation: { readonly value: Promise<string>; readonly at: number } | undefined;
  #seen: string | undefined;

  /**
   * The data's generation (a token each import renews, `empty` before the first): what policy
   * decided with, so metadata filtered with older data is not reused. An import here shows at
   * once; one by another process (the CLI) within GENERATION_RECHECK_MS, and a new generation
   * drops the cached lookups so that no decision mixes old advisories with the new stamp.
   */
  generation(): Promise<string> {
    const now = this.#clock.now();
    const known = this.#generation;
    if (known !== undefined && now - known.at < GENERATION_RECHECK_MS) return known.value;
    const value = this.store.getMeta(META.generation).then((stored) => {
      const g = stored ?? 'empty';
      if (this.#seen !== undefined && this.#seen !== g) this.#cache.clear();
      this.#seen = g;
      return g;
    });
    this.#generation = { value, at: now };
    value.catch(() => {
      if (this.#generation?.value === value) this.#generation = undefined;
    });
    return value;
  }

  async status(): Promise<VulndbStatus> {
    const updated = await this.store.getMeta(META.updatedAt);
    return {
      advisories: await this.store.count(),
      ...(updated === undefined ? {} : { updatedAt: Number(updated) }),
      online: this.#online !== undefined,
    };
  }

  /** Advisories of one package; `ecosystem` is a Gatehouse ecosystem name (`npm`, `pypi`, …). */
  forPackage(ecosystem: string, name: string, signal?: AbortSignal): Promise<PackageAdvisories> {
    const key = `${ecosystem}\u0000${name}`;
    const now = this.#clock.now();
    const hit = this.#cache.get(key);
    // Entries are reread after a minute, so an import by another process (the CLI) shows up.
    if (hit !== undefined && now - hit.at < 60_000) return hit.value;
    const value = this.#load(ecosystem, name, signal).catch((error: unknown) =>
      unavailable(
        `the vulnerability database failed (${error instanceof Error ? error.message : String(error)})`,
      ),
    );
    this.#cache.delete(key);
    this.#cache.set(key, { value, at: now });
    // A failed lookup is not remembered: the next request tries again.
    void value.then((v) => {
      if (!v.available && this.#cache.get(key)?.value === value) this.#cache.delete(key);
    });
    if (this.#cache.size > this.#max) this.#cache.delete(this.#cache.keys().next().value as string);
    return value;
  }

  async #load(ecosystem: string, name: string, signal?: AbortSignal): Promise<PackageAdvisories> {
    const osv = OSV_ECOSYSTEMS[ecosystem as keyof typeof OSV_ECOSYSTEMS] as string | undefined;
    if (osv === undefined) return unavailable(`ecosystem "${ecosystem}" has no vulnerability data`);
    const updatedText = await this.store.getMeta(META.updatedAt);
    const updatedAt = updatedText === undefined ? undefined : Number(updatedText);
    const records = updatedAt === undefined ? [] : await this.store.recordsFor(osv, name);
    if (this.#online !== undefined) {
      const online = await this.#online.recordsFor(osv, name, signal);
      const byId = new Map(records.map((r) => [r.id, r]));
      for (const r of online)
        if (!byId.has(r.id) || Date.parse(r.modified) > Date.parse(byId.get(r.id)?.modified ?? ''))
          byId.set(r.id, r);
      return packageView(osv, name, [...byId.values()], updatedAt ?? this.#clock.now());
    }
    if (updatedAt === undefined) return unavailable('the vulnerability database is empty');
    const maxAge = this.#config.maxAge;
    const age = this.#clock.now() - updatedAt;
    if (maxAge !== undefined && age > maxAge) {
      return unavailable(
        `the vulnerability database is ${formatDuration(age)} old (limit ${formatDuration(maxAge)})`,
        updatedAt,
      );
    }
    return packageView(osv, name, records, updatedAt);
  }
}
