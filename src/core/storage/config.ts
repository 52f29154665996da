import { mkdir } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { duration, type Infer, integer, object, string } from '#core/config';
import type { Logger } from '#core/log';
import type { Database } from './port.ts';
import { createPostgresDatabase } from './postgres-database.ts';
import { createSqliteDatabase } from './sqlite-database.ts';

/** The `storage` section of gatehouse.yaml. */
export const storageConfigSchema = object(
  {
    url: string(
      {
        description:
          'Where the database lives. Empty: the SQLite file `gatehouse.db` in the data folder. `sqlite:<file>`: another SQLite file (relative to the data folder). `postgres://user:password@host:5432/db`: PostgreSQL.',
        secret: true,
      },
      {
        default: '',
        pattern: /^$|^sqlite:.+$|^postgres(ql)?:\/\/.+$/,
        format: 'empty, "sqlite:<file>" or a "postgres://" URL',
      },
    ),
    poolSize: integer('Most PostgreSQL connections one replica opens.', { default: 10, min: 1, max: 1000 }),
    connectTimeout: duration('How long to wait for a PostgreSQL connection before failing the request.', {
      default: '5s',
      min: 1,
    }),
    statementTimeout: duration('Server-side limit on one PostgreSQL statement; "0s" disables it.', {
      default: '30s',
      min: 0,
    }),
    busyTimeout: duration('How long an SQLite writer waits for another process that holds the write lock.', {
      default: '5s',
      min: 0,
    }),
  },
  'The database: embedded SQLite by default, PostgreSQL for several replicas.',
);

/** The parsed `storage` section. */
export type StorageConfig = Infer<typeof storageConfigSchema>;

/** What createDatabase needs besides its section. */
export interface CreateDatabaseOptions {
  /** The absolute data folder; the default SQLite file lives here. */
  readonly dataDir: string;
  readonly log?: Logger;
  /** Epoch milliseconds for migration records. */
  readonly now?: () => number;
}

/**
 * The SQLite file a `storage.url` names (`""` is `gatehouse.db`, a relative name is inside
 * `dataDir`), `:memory:` as is; undefined for PostgreSQL. Throws TypeError for "sqlite:" alone.
 */
export function sqliteFileOf(url: string, dataDir: string): string | undefined {
  if (/^postgres(ql)?:\/\//.test(url)) return undefined;
  const name = url === '' ? 'gatehouse.db' : url.slice('sqlite:'.length);
  if (name === '') throw new TypeError('storage.url "sqlite:" needs a file name');
  return name === ':memory:' || isAbsolute(name) ? name : join(dataDir, name);
}

/**
 * Opens the configured database: SQLite in the data folder when `url` is empty or
 * `sqlite:<file>`, PostgreSQL for a `postgres://` URL.
 */
export async function createDatabase(
  config: StorageConfig,
  options: CreateDatabaseOptions,
): Promise<Database> {
  const now = options.now === undefined ? {} : { now: options.now };
  if (/^postgres(ql)?:\/\//.test(config.url)) {
    return createPostgresDatabase({
      url: config.url,
      poolSize: config.poolSize,
      connectTimeoutMs: config.connectTimeout,
      statementTimeoutMs: config.statementTimeout,
      ...(options.log === undefined ? {} : { log: options.log }),
      ...now,
    });
  }
  // Not PostgreSQL (answered above), so a file or :memory:.
  const file = sqliteFileOf(config.url, options.dataDir) ?? ':memory:';
  if (file !== ':memory:') await mkdir(dirname(file), { recursive: true });
  options.log?.info('Opening SQLite database', { file });
  return createSqliteDatabase({ file, busyTimeoutMs: config.busyTimeout, ...now });
}
