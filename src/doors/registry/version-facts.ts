/**
 * Durable per-version facts of the registry's ecosystems (Go, Maven, OCI, PyPI): first-seen times, pinned
 * hashes and publication times read from upstream headers. They outlive the metadata cache and
 * are shared by replicas through the core database; the first value written wins, so a later
 * upstream answer cannot move a first-seen time or a pinned hash.
 */
import type { Database, Migration } from '#core/storage';

interface FactsTable {
  registry_version_facts: {
    ecosystem: string;
    name: string;
    version: string;
    fact: string;
    value: string;
  };
}

const MIGRATIONS: readonly Migration[] = [
  {
    id: '0001_version_facts',
    async up(db) {
      await db.schema
        .createTable('registry_version_facts')
        .addColumn('ecosystem', 'varchar(16)', (c) => c.notNull())
        .addColumn('name', 'varchar(512)', (c) => c.notNull())
        .addColumn('version', 'varchar(256)', (c) => c.notNull())
        .addColumn('fact', 'varchar(32)', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('registry_version_facts_pk', ['ecosystem', 'name', 'version', 'fact'])
        .execute();
    },
  },
];

/**
 * The kinds of facts kept. `absent-at`: the last time the door read the package's version list
 * without this version (it was published after that); `list-fetched`: when the door last read a
 * list from upstream (version "" for the package's versions, a Maven snapshot version for its
 * builds); `snapshot-doc`: a Maven snapshot version's metadata as last served with its newest
 * build allowed. The last two are overwritten, every other fact is written once.
 */
export type FactKind =
  | 'first-seen'
  | 'h1'
  | 'h1-mod'
  | 'published'
  | 'digest'
  | 'absent-at'
  | 'list-fetched'
  | 'snapshot-doc';

const SKEW = 5 * 60_000;

/** A time from an upstream or a fact: undefined when unparsable, before `earliest` or in the future. */
export function plausibleTime(text: string | undefined, now: number, earliest: number): number | undefined {
  const t = text === undefined ? Number.NaN : Date.parse(text);
  return Number.isFinite(t) && t >= earliest && t <= now + SKEW ? t : undefined;
}

/**
 * A version's publication time: the time upstream claims (`claimed`) when plausible, else when
 * the door first saw it; never before the last time the door read a list without it
 * (`absentAt`): whoever publishes chooses the claimed time, and could backdate it.
 */
export function publicationTime(
  claimed: string | undefined,
  firstSeen: string | undefined,
  absentAt: string | undefined,
  now: number,
  earliest = 0,
): number | undefined {
  const t = plausibleTime(claimed, now, earliest) ?? plausibleTime(firstSeen, now, earliest);
  const bound = plausibleTime(absentAt, now, earliest);
  return bound !== undefined && (t === undefined || bound > t) ? bound : t;
}

export class VersionFacts {
  readonly #db: Database;
  #ready: Promise<unknown> | undefined;

  constructor(db: Database) {
    this.#db = db;
  }

  #migrated(): Promise<unknown> {
    this.#ready ??= this.#db
      .migrate({ module: 'registry-facts', migrations: MIGRATIONS })
      .catch((error: unknown) => {
        this.#ready = undefined;
        throw error;
      });
    return this.#ready;
  }

  /** Every stored value of one fact for a package, by version. */
  async all(ecosystem: string, name: string, fact: FactKind): Promise<Map<string, string>> {
    await this.#migrated();
    const rows = await this.#db
      .kysely<FactsTable>()
      .selectFrom('registry_version_facts')
      .select(['version', 'value'])
      .where('ecosystem', '=', ecosystem)
      .where('name', '=', name)
      .where('fact', '=', fact)
      .execute();
    return new Map(rows.map((r) => [r.version, r.value]));
  }

  /** Every stored fact of one version, by kind, in one read. */
  async of(ecosystem: string, name: string, version: string): Promise<Map<FactKind, string>> {
    await this.#migrated();
    const rows = await this.#db
      .kysely<FactsTable>()
      .selectFrom('registry_version_facts')
      .select(['fact', 'value'])
      .where('ecosystem', '=', ecosystem)
      .where('name', '=', name)
      .where('version', '=', version)
      .execute();
    return new Map(rows.map((r) => [r.fact as FactKind, r.value]));
  }

  async get(ecosystem: string, name: string, version: string, fact: FactKind): Promise<string | undefined> {
    await this.#migrated();
    const row = await this.#db
      .kysely<FactsTable>()
      .selectFrom('registry_version_facts')
      .select('value')
      .where('ecosystem', '=', ecosystem)
      .where('name', '=', name)
      .where('version', '=', version)
      .where('fact', '=', fact)
      .executeTakeFirst();
    return row?.value;
  }

  /** Stores values not stored yet and returns what is stored now (the first writer wins). */
  async remember(
    ecosystem: string,
    name: string,
    fact: FactKind,
    values: ReadonlyMap<string, string>,
    /** What is stored now, when the caller has just read it (`all`). */
    stored?: ReadonlyMap<string, string>,
  ): Promise<Map<string, string>> {
    const known = stored === undefined ? await this.all(ecosystem, name, fact) : new Map(stored);
    const fresh = [...values].filter(([v]) => !known.has(v));
    if (fresh.length === 0) return known;
    // Batches stay far below SQLite's bound-parameter limit.
    for (let i = 0; i < fresh.length; i += 500) {
      await this.#db
        .kysely<FactsTable>()
        .insertInto('registry_version_facts')
        .values(
          fresh.slice(i, i + 500).map(([version, value]) => ({ ecosystem, name, version, fact, value })),
        )
        .onConflict((oc) => oc.doNothing())
        .execute();
    }
    return this.all(ecosystem, name, fact);
  }

  /**
   * Records one read of a list of versions (`list` names it: `list-fetched` is kept per list):
   * `entries` new to the door get `now` as their first-seen time. When the read came from
   * upstream (`fetchedAt`; undefined when it came from the cache), the entries of `listed` (all
   * of them by default) it shows for the first time were absent from the previous read, so each
   * keeps that read's time as its `absent-at` bound (the first one recorded wins), and this read
   * becomes the previous one. Returns every first-seen time and bound known for the package.
   */
  async observe(
    ecosystem: string,
    name: string,
    list: string,
    read: { readonly now: number; readonly fetchedAt: number | undefined },
    entries: readonly string[],
    listed: readonly string[] = entries,
  ): Promise<{ seen: Map<string, string>; absent: Map<string, string> }> {
    const { now, fetchedAt } = read;
    // The entries known before this read: only a read from upstream can bound new ones.
    const known = await this.all(ecosystem, name, 'first-seen');
    const seen = await this.remember(
      ecosystem,
      name,
      'first-seen',
      new Map(entries.map((v) => [v, new Date(now).toISOString()])),
      known,
    );
    if (fetchedAt === undefined) return { seen, absent: await this.all(ecosystem, name, 'absent-at') };
    const appeared = listed.filter((v) => !known.has(v));
    const previous = await this.get(ecosystem, name, list, 'list-fetched');
    const absent =
      previous === undefined || appeared.length === 0
        ? await this.all(ecosystem, name, 'absent-at')
        : await this.remember(ecosystem, name, 'absent-at', new Map(appeared.map((v) => [v, previous])));
    // A read is never moved back by a slower concurrent one.
    if (previous === undefined || Date.parse(previous) < fetchedAt)
      await this.set(ecosystem, name, list, 'list-fetched', new Date(fetchedAt).toISOString());
    return { seen, absent };
  }

  /** Stores a value whether or not one is stored (the last writer wins). */
  async set(ecosystem: string, name: string, version: string, fact: FactKind, value: string): Promise<void> {
    await this.#migrated();
    await this.#db
      .kysely<FactsTable>()
      .insertInto('registry_version_facts')
      .values({ ecosystem, name, version, fact, value })
      .onConflict((oc) => oc.columns(['ecosystem', 'name', 'version', 'fact']).doUpdateSet({ value }))
      .execute();
  }
}
