import type { DatabaseSync, SQLInputValue, StatementSync } from 'node:sqlite';
import {
  CompiledQuery,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  type QueryResult,
  SelectQueryNode,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from 'kysely';
import { setTimeout as delay } from 'node:timers/promises';
import { createMutex, type Mutex } from './mutex.ts';

/** Statements kept prepared per connection; SQLite parses a statement once per prepare. */
const STATEMENT_CACHE_SIZE = 256;

/**
 * Converts a Kysely parameter to a value node:sqlite binds. node:sqlite refuses booleans and
 * Dates, which Kysely passes through untouched; map them the way Kysely's own SQLite dialect
 * users store them (0/1 and ISO-8601 text).
 */
function toSqlite(value: unknown): SQLInputValue {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value instanceof Date) return value.toISOString();
  if (value === undefined) return null;
  return value as SQLInputValue;
}

/**
 * node:sqlite returns null-prototype rows and BLOBs as Uint8Array; doors and the PostgreSQL
 * driver deal in plain objects and Buffers (the Buffer wraps the same memory, no copy).
 */
function fromSqliteRow(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key in row) {
    const value = row[key];
    out[key] =
      value instanceof Uint8Array && !Buffer.isBuffer(value)
        ? Buffer.from(value.buffer, value.byteOffset, value.byteLength)
        : value;
  }
  return out;
}

function isBusy(error: unknown): boolean {
  const e = error as { code?: unknown; errcode?: unknown } | null;
  return e?.code === 'ERR_SQLITE_ERROR' && typeof e.errcode === 'number' && (e.errcode & 0xff) === 5;
}

/**
 * Retries `fn` while SQLite answers SQLITE_BUSY, up to `timeoutMs`. SQLite's own busy handler
 * sleeps inside the synchronous call and so blocks the whole event loop, which deadlocks when
 * the lock holder is another connection of this same process waiting for its next turn; this
 * waits asynchronously instead, and is only used where a retry is safe (nothing happened yet).
 */
export async function retryBusy<T>(
  fn: () => T,
  timeoutMs: number,
  canRetry: () => boolean = () => true,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let wait = 1;
  for (;;) {
    try {
      return fn();
    } catch (error) {
      if (!isBusy(error) || !canRetry() || performance.now() + wait > deadline) throw error;
      await delay(wait);
      wait = Math.min(wait * 2, 50);
    }
  }
}

class NodeSqliteConnection implements DatabaseConnection {
  readonly #db: DatabaseSync;
  readonly #busyTimeoutMs: number;
  readonly #statements = new Map<string, StatementSync>();

  constructor(db: DatabaseSync, busyTimeoutMs: number) {
    this.#db = db;
    this.#busyTimeoutMs = busyTimeoutMs;
  }

  #prepare(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (statement !== undefined) {
      // Re-insert to keep the map in least-recently-used order.
      this.#statements.delete(sql);
      this.#statements.set(sql, statement);
      return statement;
    }
    statement = this.#db.prepare(sql);
    this.#statements.set(sql, statement);
    if (this.#statements.size > STATEMENT_CACHE_SIZE) {
      const oldest = this.#statements.keys().next().value;
      if (oldest !== undefined) this.#statements.delete(oldest);
    }
    return statement;
  }

  executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    // A statement that failed with SQLITE_BUSY had no effect; outside a transaction (including
    // BEGIN IMMEDIATE itself) it can be run again. Inside one, the caller must roll back.
    return retryBusy(
      () => this.#execute<R>(compiled),
      this.#busyTimeoutMs,
      () => !this.#db.isTransaction,
    );
  }

  #execute<R>(compiled: CompiledQuery): QueryResult<R> {
    const statement = this.#prepare(compiled.sql);
    const params = compiled.parameters.map(toSqlite);
    // A statement that yields columns is a reader (SELECT, PRAGMA, INSERT … RETURNING).
    if (statement.columns().length > 0) {
      const rows = statement.all(...params) as Record<string, unknown>[];
      return { rows: rows.map(fromSqliteRow) as R[] };
    }
    const { changes, lastInsertRowid } = statement.run(...params);
    return { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] };
  }

  async *streamQuery<R>(compiled: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    if (!SelectQueryNode.is(compiled.query)) {
      throw new TypeError('The SQLite driver streams SELECT queries only');
    }
    const statement = this.#prepare(compiled.sql);
    for (const row of statement.iterate(...compiled.parameters.map(toSqlite))) {
      yield { rows: [fromSqliteRow(row) as R] };
    }
  }

  clear(): void {
    this.#statements.clear();
  }
}

/**
 * A Kysely driver over one node:sqlite connection. SQLite allows one writer; a single
 * connection guarded by a mutex makes every transaction run alone, so two transactions of
 * this process never interleave on the shared connection.
 */
class NodeSqliteDriver implements Driver {
  readonly #open: () => DatabaseSync;
  readonly #busyTimeoutMs: number;
  readonly #mutex: Mutex = createMutex();
  #db: DatabaseSync | undefined;
  #connection: NodeSqliteConnection | undefined;

  constructor(open: () => DatabaseSync, busyTimeoutMs: number) {
    this.#open = open;
    this.#busyTimeoutMs = busyTimeoutMs;
  }

  async init(): Promise<void> {
    // Opening switches to WAL, which waits for other connections' locks like any write.
    this.#db = await retryBusy(this.#open, this.#busyTimeoutMs);
    this.#connection = new NodeSqliteConnection(this.#db, this.#busyTimeoutMs);
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    await this.#mutex.lock();
    if (this.#connection === undefined) {
      this.#mutex.unlock();
      throw new Error('The SQLite database is closed');
    }
    return this.#connection;
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    // IMMEDIATE takes the write lock up front, so a second process waits on busy_timeout at
    // BEGIN instead of failing with SQLITE_BUSY on its first write (a deadlock SQLite cannot wait out).
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('commit'));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('rollback'));
  }

  async savepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`savepoint "${name}"`));
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`rollback to "${name}"`));
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`release "${name}"`));
  }

  releaseConnection(): Promise<void> {
    this.#mutex.unlock();
    return Promise.resolve();
  }

  async destroy(): Promise<void> {
    // Wait for the query or transaction in flight so closing never cuts one in half.
    await this.#mutex.lock();
    try {
      this.#connection?.clear();
      this.#connection = undefined;
      if (this.#db?.isOpen === true) this.#db.close();
      this.#db = undefined;
    } finally {
      this.#mutex.unlock();
    }
  }
}

/**
 * A Kysely dialect over Node's built-in `node:sqlite` (`DatabaseSync`). Kysely's own
 * SqliteDialect expects a better-sqlite3-like object (`statement.reader`, array parameters);
 * this adapts node:sqlite statements instead of adding a native dependency.
 */
export class NodeSqliteDialect implements Dialect {
  readonly #open: () => DatabaseSync;
  readonly #busyTimeoutMs: number;

  /**
   * `open` creates and configures the connection (with SQLite's own busy timeout at 0); it runs
   * once, in `Driver.init`. `busyTimeoutMs` bounds the asynchronous wait for another writer.
   */
  constructor(open: () => DatabaseSync, busyTimeoutMs: number) {
    this.#open = open;
    this.#busyTimeoutMs = busyTimeoutMs;
  }

  createDriver(): Driver {
    return new NodeSqliteDriver(this.#open, this.#busyTimeoutMs);
  }

  createQueryCompiler(): QueryCompiler {
    return new SqliteQueryCompiler();
  }

  createAdapter(): DialectAdapter {
    return new SqliteAdapter();
  }

  // oxlint-disable-next-line typescript/no-explicit-any -- Kysely's Dialect signature.
  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new SqliteIntrospector(db);
  }
}
