/**
 * Durable per-version facts of the part-2 ecosystems (Go, Maven, OCI): first-seen times, pinned
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
 * without this version (it was published after that); `list-fetched` (version ""): when the door
 * last read the package's version list from upstream, the one fact that is overwritten.
 */
export type FactKind = 'first-seen' | 'h1' | 'h1-mod' | 'published' | 'digest' | 'absent-at' | 'list-fetched';

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
  ): Promise<Map<string, string>> {
    const known = await this.all(ecosystem, name, fact);
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
