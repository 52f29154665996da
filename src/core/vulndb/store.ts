import type { Database, Migration } from '#core/storage';
import { normalizePackageName, type OsvRecord } from './osv.ts';

interface AdvisoryTable {
  id: string;
  modified: string;
  withdrawn: string | null;
  record: string;
}

interface AffectedTable {
  advisory_id: string;
  ecosystem: string;
  name: string;
}

interface MetaTable {
  key: string;
  value: string;
}

/** The vulndb tables, as Kysely sees them. */
export interface VulndbTables {
  vulndb_advisories: AdvisoryTable;
  vulndb_affected: AffectedTable;
  vulndb_meta: MetaTable;
}

/** Migrations of the `vulndb` module (run with `db.migrate({ module: 'vulndb', migrations })`). */
export const VULNDB_MIGRATIONS: readonly Migration[] = [
  {
    id: '0001_osv',
    async up(db) {
      await db.schema
        .createTable('vulndb_advisories')
        .addColumn('id', 'varchar(255)', (c) => c.primaryKey())
        .addColumn('modified', 'varchar(64)', (c) => c.notNull())
        .addColumn('withdrawn', 'varchar(64)')
        .addColumn('record', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('vulndb_affected')
        .addColumn('advisory_id', 'varchar(255)', (c) => c.notNull())
        .addColumn('ecosystem', 'varchar(64)', (c) => c.notNull())
        .addColumn('name', 'varchar(512)', (c) => c.notNull())
        .addPrimaryKeyConstraint('vulndb_affected_pk', ['ecosystem', 'name', 'advisory_id'])
        .execute();
      await db.schema
        .createIndex('vulndb_affected_advisory')
        .on('vulndb_affected')
        .column('advisory_id')
        .execute();
      await db.schema
        .createTable('vulndb_meta')
        .addColumn('key', 'varchar(128)', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
    },
  },
];

/** What happened to one record on upsert. */
export type UpsertResult = 'inserted' | 'updated' | 'unchanged';

/** Keys of the meta table. */
export const META = { updatedAt: 'updated_at', count: 'advisory_count', generation: 'generation' } as const;

function affectedKeys(record: OsvRecord): { ecosystem: string; name: string }[] {
  const seen = new Map<string, { ecosystem: string; name: string }>();
  for (const a of record.affected ?? []) {
    if (a.package === undefined) continue;
    // `Debian:11`-style suffixes name a release; the ecosystem itself is the part before the colon.
    const ecosystem = a.package.ecosystem.split(':')[0] ?? a.package.ecosystem;
    const name = normalizePackageName(ecosystem, a.package.name);
    seen.set(`${ecosystem}\u0000${name}`, { ecosystem, name });
  }
  return [...seen.values()];
}

/** Data access of the vulnerability tables. */
export class VulndbStore {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
  }

  /** Creates or upgrades the tables. */
  async migrate(): Promise<void> {
    await this.#db.migrate({ module: 'vulndb', migrations: VULNDB_MIGRATIONS });
  }

  /**
   * Inserts or replaces records in one transaction; a record whose `modified` is not newer than
   * the stored one is left alone, which makes re-importing the same export cheap (incremental).
   */
  async upsertMany(records: readonly OsvRecord[]): Promise<UpsertResult[]> {
    if (records.length === 0) return [];
    return this.#db.transaction<UpsertResult[], VulndbTables>(async (trx) => {
      const ids = records.map((r) => r.id);
      const existing = await trx
        .selectFrom('vulndb_advisories')
        .select(['id', 'modified'])
        .where('id', 'in', ids)
        .execute();
      const known = new Map(existing.map((r) => [r.id, r.modified]));
      const out: UpsertResult[] = [];
      for (const record of records) {
        const before = known.get(record.id);
        if (before !== undefined && Date.parse(before) >= Date.parse(record.modified)) {
          out.push('unchanged');
          continue;
        }
        const row = {
          modified: record.modified,
          withdrawn: record.withdrawn ?? null,
          record: JSON.stringify(record),
        };
        if (before === undefined)
          await trx
            .insertInto('vulndb_advisories')
            .values({ id: record.id, ...row })
            .execute();
        else await trx.updateTable('vulndb_advisories').set(row).where('id', '=', record.id).execute();
        await trx.deleteFrom('vulndb_affected').where('advisory_id', '=', record.id).execute();
        const keys = affectedKeys(record);
        if (keys.length > 0) {
          await trx
            .insertInto('vulndb_affected')
            .values(keys.map((k) => ({ advisory_id: record.id, ...k })))
            .execute();
        }
        known.set(record.id, record.modified);
        out.push(before === undefined ? 'inserted' : 'updated');
      }
      return out;
    });
  }

  /** Every non-withdrawn record naming the package. */
  async recordsFor(osvEcosystem: string, name: string): Promise<OsvRecord[]> {
    const rows = await this.#db
      .kysely<VulndbTables>()
      .selectFrom('vulndb_affected')
      .innerJoin('vulndb_advisories', 'vulndb_advisories.id', 'vulndb_affected.advisory_id')
      .select(['vulndb_advisories.record'])
      .where('vulndb_affected.ecosystem', '=', osvEcosystem)
      .where('vulndb_affected.name', '=', normalizePackageName(osvEcosystem, name))
      .where('vulndb_advisories.withdrawn', 'is', null)
      .execute();
    return rows.map((r) => JSON.parse(r.record) as OsvRecord);
  }

  async getMeta(key: string): Promise<string | undefined> {
    const row = await this.#db
      .kysely<VulndbTables>()
      .selectFrom('vulndb_meta')
      .select('value')
      .where('key', '=', key)
      .executeTakeFirst();
    return row?.value;
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.#db.transaction<void, VulndbTables>(async (trx) => {
      await trx.deleteFrom('vulndb_meta').where('key', '=', key).execute();
      await trx.insertInto('vulndb_meta').values({ key, value }).execute();
    });
  }

  async count(): Promise<number> {
    const row = await this.#db
      .kysely<VulndbTables>()
      .selectFrom('vulndb_advisories')
      .select((eb) => eb.fn.countAll<string | number>().as('n'))
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }
}
