import { DatabaseSync } from 'node:sqlite';
import { Kysely, sql } from 'kysely';
import { createKyselyDatabase } from './database.ts';
import { mapStorageError } from './errors.ts';
import { withErrorMapping } from './mapping-dialect.ts';
import type { Database } from './port.ts';
import { NodeSqliteDialect } from './sqlite-dialect.ts';

/** Options of the embedded SQLite database. */
export interface SqliteDatabaseOptions {
  /** The database file, or `:memory:` for a private in-memory database. */
  readonly file: string;
  /** How long a writer waits for another process's lock, in milliseconds (default 5000). */
  readonly busyTimeoutMs?: number;
  /** Epoch milliseconds for migration records (default `Date.now`). */
  readonly now?: () => number;
}

function openSqlite(file: string): DatabaseSync {
  // SQLite's busy handler would sleep synchronously and stall the event loop; the driver
  // retries SQLITE_BUSY asynchronously instead (see retryBusy), so SQLite itself never waits.
  const db = new DatabaseSync(file, { enableForeignKeyConstraints: true, timeout: 0 });
  try {
    // WAL lets readers in other processes (backups, the CLI) run while the server writes;
    // NORMAL sync is durable across process crashes in WAL mode, which is what we need.
    db.exec('PRAGMA journal_mode = WAL');
    db.exec('PRAGMA synchronous = NORMAL');
    db.exec('PRAGMA busy_timeout = 0');
    db.exec('PRAGMA foreign_keys = ON');
    // Reading the schema makes a file that is not a database fail here, at open, by name.
    db.prepare('SELECT count(*) AS n FROM sqlite_master').get();
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/**
 * Opens (creating when absent) an SQLite database through Node's built-in `node:sqlite`:
 * WAL, busy timeout, foreign keys on, one serialized connection. A file that is not a
 * database fails with GW_ERR_STORAGE_CORRUPT naming it.
 */
export async function createSqliteDatabase(options: SqliteDatabaseOptions): Promise<Database> {
  const { file } = options;
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
  if (!Number.isFinite(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new RangeError(`busyTimeoutMs must be a non-negative number, got "${busyTimeoutMs}"`);
  }
  const dialect = withErrorMapping(new NodeSqliteDialect(() => openSqlite(file), busyTimeoutMs), (error) =>
    mapStorageError(error, 'sqlite', file),
  );
  // oxlint-disable-next-line typescript/no-explicit-any -- tables are typed by each caller.
  const kysely = new Kysely<any>({ dialect });
  try {
    // Kysely opens lazily; open now so a bad file fails at start-up, not at the first request.
    await sql`select 1`.execute(kysely);
  } catch (error) {
    await kysely.destroy().catch(() => undefined);
    throw error;
  }
  return createKyselyDatabase({
    dialect: 'sqlite',
    kysely,
    // BEGIN IMMEDIATE (see the driver) already holds SQLite's single write lock.
    lockedTransaction: (fn) => kysely.transaction().execute(fn),
    now: options.now ?? Date.now,
    label: `SQLite "${file}"`,
  });
}
