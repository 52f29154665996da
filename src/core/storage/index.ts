/**
 * core/storage: the Database port (Kysely over node:sqlite or PostgreSQL) and migrations.
 * @module
 */
export type { Database, Migration, MigrationSet, SqlDialect } from './port.ts';
/**
 * Error helpers: `isUniqueViolation(err)` (raw driver error or GW_ERR_STORAGE_CONFLICT),
 * `isUnavailable(err)`, `isCorrupt(err)`, `lockConflictState(err)` (PostgreSQL's deadlock and
 * serialization aborts) and `mapStorageError(err, dialect)`, which turns a driver error into
 * the catalogued storage error. Queries through `Database.kysely()` are
 * already mapped; doors use these to answer with their own code (e.g. `GW_ERR_USER_EXISTS`).
 */
export { isCorrupt, isUnavailable, isUniqueViolation, lockConflictState, mapStorageError } from './errors.ts';
/** The table recording applied migrations (`gatehouse_migrations(module, id, applied_at)`). */
export { MIGRATIONS_TABLE } from './migrate.ts';
/**
 * Opens an embedded SQLite database (`{ file }`, or `:memory:`) over node:sqlite: WAL, busy
 * timeout, foreign keys, one serialized connection; a garbage file fails with GW_ERR_STORAGE_CORRUPT.
 */
export { createSqliteDatabase, type SqliteDatabaseOptions } from './sqlite-database.ts';
/**
 * The `storage` config section (`url`, `poolSize`, `connectTimeout`, `statementTimeout`,
 * `busyTimeout`) and `createDatabase(config, { dataDir, log })`, which opens SQLite in the data
 * folder or PostgreSQL depending on `url`.
 */
export {
  type CreateDatabaseOptions,
  createDatabase,
  sqliteFileOf,
  type StorageConfig,
  storageConfigSchema,
} from './config.ts';
/** Opens PostgreSQL through a `pg` pool; connections are lazy and re-opened after a drop. */
export { createPostgresDatabase, type PostgresDatabaseOptions } from './postgres-database.ts';
