import { createRequire } from 'node:module';
import type { Logger } from '#core/log';
import { Kysely, PostgresDialect } from 'kysely';
import type * as Pg from 'pg';
import type { CustomTypesConfig } from 'pg';
import { createKyselyDatabase } from './database.ts';
import { mapStorageError } from './errors.ts';
import { withErrorMapping } from './mapping-dialect.ts';
import { POSTGRES_MIGRATION_LOCK } from './migrate.ts';
import type { Database } from './port.ts';

/** Options of the PostgreSQL database. */
export interface PostgresDatabaseOptions {
  /** `postgres://user:password@host:port/db?…`. */
  readonly url: string;
  /** Most connections the pool opens (default 10). */
  readonly poolSize?: number;
  /** How long to wait for a connection, in milliseconds (default 5000). */
  readonly connectTimeoutMs?: number;
  /** Server-side `statement_timeout` in milliseconds; 0 disables it (default 30000). */
  readonly statementTimeoutMs?: number;
  readonly log?: Logger;
  /** Epoch milliseconds for migration records (default `Date.now`). */
  readonly now?: () => number;
}

/**
 * `bigint` columns (epoch-millisecond timestamps, counts) come back as numbers, as they do
 * from SQLite, so one query reads the same on both; values beyond 2^53 stay exact as bigint.
 */
function parseInt8(text: string): number | bigint {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : BigInt(text);
}

// pg is loaded only when PostgreSQL is configured: a process on the embedded database never
// pays for it in memory or start-up time.
const requireOptional = createRequire(import.meta.url);

function typeParsers(types: typeof Pg.types): CustomTypesConfig {
  return {
    getTypeParser: ((oid: Parameters<typeof types.getTypeParser>[0], format?: 'text' | 'binary') =>
      oid === types.builtins.INT8 && format !== 'binary'
        ? parseInt8
        : types.getTypeParser(oid, format ?? 'text')) as CustomTypesConfig['getTypeParser'],
  };
}

/** The URL without credentials, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    u.search = '';
    return u.toString();
  } catch {
    return '[unparsable URL]';
  }
}

function checkOptions(options: PostgresDatabaseOptions): void {
  const { poolSize = 10, connectTimeoutMs = 5000, statementTimeoutMs = 30_000 } = options;
  if (!/^postgres(ql)?:\/\//.test(options.url)) {
    throw new TypeError(`A PostgreSQL URL starts with "postgres://", got "${redactUrl(options.url)}"`);
  }
  if (!Number.isSafeInteger(poolSize) || poolSize < 1) {
    throw new RangeError(`poolSize must be a positive integer, got "${poolSize}"`);
  }
  if (!(connectTimeoutMs > 0) || !(statementTimeoutMs >= 0)) {
    throw new RangeError(
      `Timeouts must be positive, got connect "${connectTimeoutMs}" and statement "${statementTimeoutMs}"`,
    );
  }
}

/**
 * Connects to PostgreSQL through a `pg` Pool (Kysely's PostgresDialect). Connections are made
 * lazily: the pool reconnects by itself after the server drops them, so a restart of the
 * database costs failed requests (GW_ERR_STORAGE_UNAVAILABLE) but never a restart of ours.
 */
export function createPostgresDatabase(options: PostgresDatabaseOptions): Database {
  checkOptions(options);
  const label = `PostgreSQL "${redactUrl(options.url)}"`;
  const statementTimeoutMs = options.statementTimeoutMs ?? 30_000;
  const pg = requireOptional('pg') as typeof Pg;
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    ...(statementTimeoutMs > 0 ? { statement_timeout: statementTimeoutMs } : {}),
    // A transaction left open by a crashed handler must not hold locks forever.
    idle_in_transaction_session_timeout: Math.max(statementTimeoutMs, 60_000),
    types: typeParsers(pg.types),
  });
  // A connection the server terminates emits 'error' on its client; while idle the pool
  // forwards it, but a checked-out client (or one the pool just removed) has no listener and
  // Node would crash the process. The query in flight rejects on its own; this only logs.
  const onLost = (error: Error) => {
    options.log?.warn('PostgreSQL connection lost', { error: error.message });
  };
  pool.on('error', onLost);
  pool.on('connect', (client) => {
    client.on('error', onLost);
  });
  const dialect = withErrorMapping(new PostgresDialect({ pool }), (error) =>
    mapStorageError(error, 'postgres'),
  );
  // oxlint-disable-next-line typescript/no-explicit-any -- tables are typed by each caller.
  const kysely = new Kysely<any>({ dialect });
  return createKyselyDatabase({
    dialect: 'postgres',
    kysely,
    lockedTransaction: (fn) =>
      kysely.transaction().execute(async (trx) => {
        // A transaction-scoped advisory lock: concurrent replicas queue here, and it is
        // released by COMMIT or ROLLBACK even when the process dies mid-migration.
        await POSTGRES_MIGRATION_LOCK.execute(trx);
        return fn(trx);
      }),
    now: options.now ?? Date.now,
    label,
  });
}
