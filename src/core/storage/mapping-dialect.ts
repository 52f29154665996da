import type {
  CompiledQuery,
  DatabaseConnection,
  DatabaseIntrospector,
  Dialect,
  DialectAdapter,
  Driver,
  Kysely,
  QueryCompiler,
  QueryResult,
  TransactionSettings,
} from 'kysely';

type Mapper = (error: unknown) => unknown;

class MappingConnection implements DatabaseConnection {
  readonly inner: DatabaseConnection;
  readonly #map: Mapper;

  constructor(inner: DatabaseConnection, map: Mapper) {
    this.inner = inner;
    this.#map = map;
  }

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    try {
      return await this.inner.executeQuery<R>(compiled);
    } catch (error) {
      throw this.#map(error);
    }
  }

  async *streamQuery<R>(compiled: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    try {
      yield* this.inner.streamQuery<R>(compiled, chunkSize);
    } catch (error) {
      throw this.#map(error);
    }
  }
}

/**
 * Wraps a driver so every failure leaves Kysely as a catalogued storage error. Connections
 * are wrapped once and remembered, because Kysely hands the same object back on release.
 */
class MappingDriver implements Driver {
  readonly #inner: Driver;
  readonly #map: Mapper;
  readonly #wrapped = new WeakMap<DatabaseConnection, MappingConnection>();

  constructor(inner: Driver, map: Mapper) {
    this.#inner = inner;
    this.#map = map;
  }

  async #call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw this.#map(error);
    }
  }

  init(): Promise<void> {
    return this.#call(() => this.#inner.init());
  }

  acquireConnection(): Promise<DatabaseConnection> {
    return this.#call(async () => {
      const connection = await this.#inner.acquireConnection();
      let wrapped = this.#wrapped.get(connection);
      if (wrapped === undefined) {
        wrapped = new MappingConnection(connection, this.#map);
        this.#wrapped.set(connection, wrapped);
      }
      return wrapped;
    });
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return this.#call(() => this.#inner.beginTransaction(unwrap(connection), settings));
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#call(() => this.#inner.commitTransaction(unwrap(connection)));
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#call(() => this.#inner.rollbackTransaction(unwrap(connection)));
  }

  savepoint(
    connection: DatabaseConnection,
    name: string,
    compile: Parameters<NonNullable<Driver['savepoint']>>[2],
  ): Promise<void> {
    return this.#call(async () => this.#inner.savepoint?.(unwrap(connection), name, compile));
  }

  rollbackToSavepoint(
    connection: DatabaseConnection,
    name: string,
    compile: Parameters<NonNullable<Driver['rollbackToSavepoint']>>[2],
  ): Promise<void> {
    return this.#call(async () => this.#inner.rollbackToSavepoint?.(unwrap(connection), name, compile));
  }

  releaseSavepoint(
    connection: DatabaseConnection,
    name: string,
    compile: Parameters<NonNullable<Driver['releaseSavepoint']>>[2],
  ): Promise<void> {
    return this.#call(async () => this.#inner.releaseSavepoint?.(unwrap(connection), name, compile));
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return this.#inner.releaseConnection(unwrap(connection));
  }

  destroy(): Promise<void> {
    return this.#inner.destroy();
  }
}

function unwrap(connection: DatabaseConnection): DatabaseConnection {
  return connection instanceof MappingConnection ? connection.inner : connection;
}

/**
 * A dialect whose driver maps every error with `map` (unique violation → CONFLICT, lost
 * server → UNAVAILABLE), so doors see the same errors from SQLite and PostgreSQL.
 */
export function withErrorMapping(inner: Dialect, map: Mapper): Dialect {
  return {
    createDriver: (): Driver => new MappingDriver(inner.createDriver(), map),
    createQueryCompiler: (): QueryCompiler => inner.createQueryCompiler(),
    createAdapter: (): DialectAdapter => inner.createAdapter(),
    // oxlint-disable-next-line typescript/no-explicit-any -- Kysely's Dialect signature.
    createIntrospector: (db: Kysely<any>): DatabaseIntrospector => inner.createIntrospector(db),
  };
}
