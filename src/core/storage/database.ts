import { GatewayError } from '#core/errors';
import { type Kysely, sql, type Transaction } from 'kysely';
import { type MigrationRunner, migrate } from './migrate.ts';
import type { Database, MigrationSet, SqlDialect } from './port.ts';

// oxlint-disable-next-line typescript/no-explicit-any -- the caller supplies its table types.
type AnyDb = Kysely<any>;
// oxlint-disable-next-line typescript/no-explicit-any -- the caller supplies its table types.
type AnyTrx = Transaction<any>;

/** The parts that differ between SQLite and PostgreSQL. */
export interface DatabaseParts {
  readonly dialect: SqlDialect;
  readonly kysely: AnyDb;
  /** Runs `fn` in a transaction that holds the migration lock of this database. */
  lockedTransaction<T>(fn: (trx: AnyTrx) => Promise<T>): Promise<T>;
  /** Epoch milliseconds for `applied_at`. */
  now(): number;
  /** A name for messages, never containing credentials (`SQLite "x.db"`, `PostgreSQL`). */
  readonly label: string;
}

/** Builds the Database port over a configured Kysely instance. */
export function createKyselyDatabase(parts: DatabaseParts): Database {
  const { dialect, kysely, label } = parts;
  let closed: Promise<void> | undefined;
  const runner: MigrationRunner = {
    dialect,
    lockedTransaction: (fn) => parts.lockedTransaction(fn),
    now: () => parts.now(),
  };
  return {
    dialect,
    kysely: <Tables>() => kysely as Kysely<Tables>,
    transaction: <T, Tables>(fn: (trx: Transaction<Tables>) => Promise<T>) =>
      kysely.transaction().execute((trx) => fn(trx as Transaction<Tables>)),
    migrate: (set: MigrationSet) => migrate(runner, set),
    async ping(timeoutMs = 2000) {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new GatewayError('GW_ERR_STORAGE_UNAVAILABLE', {
                message: `${label} did not answer within ${timeoutMs} ms`,
              }),
            ),
          timeoutMs,
        );
      });
      try {
        await Promise.race([sql`select 1`.execute(kysely), deadline]);
      } finally {
        clearTimeout(timer);
      }
    },
    close() {
      closed ??= kysely.destroy();
      return closed;
    },
  };
}
