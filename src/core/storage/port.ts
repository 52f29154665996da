import type { Kysely, Transaction } from 'kysely';

/**
 * The database port. Doors receive a Kysely instance typed with their own tables
 * (ADR 0002 explains why Kysely is the one third-party type core/storage hands out):
 * one query works on SQLite and PostgreSQL alike.
 */
export type SqlDialect = 'sqlite' | 'postgres';

/** One forward-only migration. `id` sorts lexically (`0001_routes`); never edit a released one. */
export interface Migration {
  readonly id: string;
  // oxlint-disable-next-line typescript/no-explicit-any -- migrations run before any table type exists.
  up(db: Kysely<any>, dialect: SqlDialect): Promise<void>;
}

/** The migrations of one module or door, tracked under its own name. */
export interface MigrationSet {
  /** `core`, `edge`, `kv`, `registry`, `artifacts`. */
  readonly module: string;
  readonly migrations: readonly Migration[];
}

export interface Database {
  readonly dialect: SqlDialect;
  /** The query builder, typed by the caller's table interface. */
  // oxlint-disable-next-line typescript/no-explicit-any -- the caller supplies its table types.
  kysely<Tables = any>(): Kysely<Tables>;
  /** Runs `fn` in one transaction (serialised BEGIN IMMEDIATE on SQLite). */
  // oxlint-disable-next-line typescript/no-explicit-any -- the caller supplies its table types.
  transaction<T, Tables = any>(fn: (trx: Transaction<Tables>) => Promise<T>): Promise<T>;
  /**
   * Applies pending migrations of a set, in id order, each in its own transaction. Safe when
   * several replicas start at once (advisory lock on PostgreSQL, a write lock on SQLite).
   */
  migrate(set: MigrationSet): Promise<readonly string[]>;
  /** Resolves when the database answers a trivial query within `timeoutMs`. */
  ping(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}
