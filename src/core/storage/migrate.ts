import { GatewayError } from '#core/errors';
import { type Kysely, sql, type Transaction } from 'kysely';
import type { MigrationSet, SqlDialect } from './port.ts';

/** The table that records applied migrations; one row per (module, id). */
export const MIGRATIONS_TABLE = 'gatehouse_migrations';

interface MigrationRow {
  module: string;
  id: string;
  applied_at: number;
}

interface MigrationTables {
  gatehouse_migrations: MigrationRow;
}

// oxlint-disable-next-line typescript/no-explicit-any -- migrations run before any table type exists.
type AnyDb = Kysely<any>;

/** What migrate needs from a dialect: a transaction that holds the migration lock. */
export interface MigrationRunner {
  readonly dialect: SqlDialect;
  // oxlint-disable-next-line typescript/no-explicit-any -- see AnyDb.
  lockedTransaction<T>(fn: (trx: Transaction<any>) => Promise<T>): Promise<T>;
  now(): number;
}

/** Throws TypeError for a set no build should ship: empty names or duplicate ids. */
function checkSet(set: MigrationSet): string[] {
  if (!/^[a-z][a-z0-9_-]{0,62}$/.test(set.module)) {
    throw new TypeError(
      `Migration module name "${set.module}" must be lower-case letters, digits, "_" or "-"`,
    );
  }
  const ids = set.migrations.map((m) => m.id);
  const seen = new Set<string>();
  for (const id of ids) {
    if (!/^[A-Za-z0-9_.-]{1,200}$/.test(id)) {
      throw new TypeError(
        `Migration id "${id}" of module "${set.module}" must be letters, digits, "_", "." or "-"`,
      );
    }
    if (seen.has(id)) throw new TypeError(`Migration id "${id}" appears twice in module "${set.module}"`);
    seen.add(id);
  }
  // Lexical (code unit) order, the same on every machine and locale.
  return ids.toSorted((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

async function ensureTable(db: AnyDb): Promise<void> {
  await db.schema
    .createTable(MIGRATIONS_TABLE)
    .ifNotExists()
    .addColumn('module', 'varchar(64)', (c) => c.notNull())
    .addColumn('id', 'varchar(200)', (c) => c.notNull())
    .addColumn('applied_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('gatehouse_migrations_pk', ['module', 'id'])
    .execute();
}

async function appliedIds(db: AnyDb, module: string): Promise<Set<string>> {
  const rows = await (db as unknown as Kysely<MigrationTables>)
    .selectFrom(MIGRATIONS_TABLE)
    .select('id')
    .where('module', '=', module)
    .execute();
  return new Set(rows.map((r) => r.id));
}

function refuseDowngrade(module: string, applied: ReadonlySet<string>, known: readonly string[]): void {
  const knownSet = new Set(known);
  const unknown = [...applied].filter((id) => !knownSet.has(id)).toSorted();
  if (unknown.length === 0) return;
  throw new GatewayError('GW_ERR_STORAGE_MIGRATION_UNKNOWN', {
    message: `The database has migration "${module}/${unknown[0]}" that this build does not know; it was written by a newer version, refusing to start`,
    details: { module, unknown },
  });
}

/**
 * Applies the pending migrations of `set` in lexical id order, each in its own transaction
 * that also records it, under a lock that makes concurrent replicas wait for one another
 * (and then find the work done). Returns the ids applied by this call.
 */
export async function migrate(runner: MigrationRunner, set: MigrationSet): Promise<readonly string[]> {
  const order = checkSet(set);
  const byId = new Map(set.migrations.map((m) => [m.id, m]));
  const pending = await runner.lockedTransaction(async (trx) => {
    await ensureTable(trx);
    const applied = await appliedIds(trx, set.module);
    refuseDowngrade(set.module, applied, order);
    return order.filter((id) => !applied.has(id));
  });
  const done: string[] = [];
  for (const id of pending) {
    const migration = byId.get(id);
    if (migration === undefined) continue;
    const ran = await runner.lockedTransaction(async (trx) => {
      // Another replica may have applied it between our check and this lock.
      if ((await appliedIds(trx, set.module)).has(id)) return false;
      try {
        await migration.up(trx, runner.dialect);
      } catch (error) {
        throw new GatewayError('GW_ERR_STORAGE_MIGRATION_FAILED', {
          message: `Migration "${set.module}/${id}" failed: ${error instanceof Error ? error.message : String(error)}`,
          details: { module: set.module, id },
          cause: error,
        });
      }
      await (trx as unknown as Transaction<MigrationTables>)
        .insertInto(MIGRATIONS_TABLE)
        .values({ module: set.module, id, applied_at: runner.now() })
        .execute();
      return true;
    });
    if (ran) done.push(id);
  }
  return done;
}

/** The PostgreSQL advisory lock statement for migrations, scoped to the current schema. */
export const POSTGRES_MIGRATION_LOCK = sql`select pg_advisory_xact_lock(hashtext(${`${MIGRATIONS_TABLE}:`} || current_schema()))`;
