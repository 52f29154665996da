import { GatewayError, isGatewayError } from '#core/errors';
import type { SqlDialect } from './port.ts';

/** SQLite result codes (https://sqlite.org/rescode.html) that matter to callers. */
const SQLITE = {
  BUSY: 5,
  LOCKED: 6,
  CORRUPT: 11,
  CANTOPEN: 14,
  NOTADB: 26,
  CONSTRAINT_PRIMARYKEY: 1555,
  CONSTRAINT_UNIQUE: 2067,
} as const;

/** PostgreSQL SQLSTATE unique_violation (Appendix A of the PostgreSQL manual). */
const PG_UNIQUE_VIOLATION = '23505';

/** Socket errors that mean the server cannot be reached, not that the query was wrong. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EPIPE',
  'EAI_AGAIN',
]);

interface DriverError {
  readonly code?: unknown;
  readonly errcode?: unknown;
  readonly message?: unknown;
}

function asDriverError(error: unknown): DriverError | undefined {
  return typeof error === 'object' && error !== null ? error : undefined;
}

/** The SQLite primary result code of a node:sqlite error, or undefined. */
function sqliteCode(error: unknown): number | undefined {
  const e = asDriverError(error);
  if (e?.code !== 'ERR_SQLITE_ERROR' || typeof e.errcode !== 'number') return undefined;
  return e.errcode;
}

/**
 * True when `error` is a unique or primary key violation from either dialect, raw or already
 * mapped to GW_ERR_STORAGE_CONFLICT. Doors use it to answer with their own code, e.g.
 * `GW_ERR_USER_EXISTS`.
 */
export function isUniqueViolation(error: unknown): boolean {
  if (isGatewayError(error)) return error.code === 'GW_ERR_STORAGE_CONFLICT';
  const code = sqliteCode(error);
  if (code !== undefined) return code === SQLITE.CONSTRAINT_UNIQUE || code === SQLITE.CONSTRAINT_PRIMARYKEY;
  return asDriverError(error)?.code === PG_UNIQUE_VIOLATION;
}

/**
 * SQLSTATEs with which PostgreSQL aborts a transaction that lost a lock conflict:
 * deadlock_detected and serialization_failure. Running the transaction again is safe.
 */
const PG_LOCK_CONFLICTS = new Set(['40P01', '40001']);

/**
 * The SQLSTATE when `error` (or the driver error a GatewayError wraps) is PostgreSQL aborting
 * a transaction on a lock conflict (deadlock, serialization failure), else undefined.
 */
export function lockConflictState(error: unknown): string | undefined {
  const code = asDriverError(isGatewayError(error) ? error.cause : error)?.code;
  return typeof code === 'string' && PG_LOCK_CONFLICTS.has(code) ? code : undefined;
}

/** True when `error` means the database is unreachable, busy or timed out (worth a retry). */
export function isUnavailable(error: unknown): boolean {
  if (isGatewayError(error)) return error.code === 'GW_ERR_STORAGE_UNAVAILABLE';
  const code = sqliteCode(error);
  if (code !== undefined) {
    const primary = code & 0xff;
    return primary === SQLITE.BUSY || primary === SQLITE.LOCKED || primary === SQLITE.CANTOPEN;
  }
  const e = asDriverError(error);
  if (typeof e?.code === 'string') {
    if (NETWORK_CODES.has(e.code)) return true;
    // Class 08 is connection exceptions, 57P0x is server shutdown or crash (admin_shutdown,
    // crash_shutdown, cannot_connect_now), 53300 is too_many_connections, 57014 is a statement
    // cancelled by statement_timeout.
    if (/^08...$|^57P0[1-4]$|^53300$|^57014$/.test(e.code)) return true;
  }
  const message = typeof e?.message === 'string' ? e.message : '';
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
    message,
  );
}

/** True when a node:sqlite error says the file is not a database or is damaged. */
export function isCorrupt(error: unknown): boolean {
  if (isGatewayError(error)) return error.code === 'GW_ERR_STORAGE_CORRUPT';
  const code = sqliteCode(error);
  return code !== undefined && ((code & 0xff) === SQLITE.NOTADB || (code & 0xff) === SQLITE.CORRUPT);
}

/**
 * Maps a driver error to the storage error catalogue: unique violations become
 * GW_ERR_STORAGE_CONFLICT, unreachable or busy servers GW_ERR_STORAGE_UNAVAILABLE, damaged
 * SQLite files GW_ERR_STORAGE_CORRUPT. Anything else (a wrong query) is returned unchanged so
 * it surfaces as an internal error with its cause in the log.
 */
export function mapStorageError(error: unknown, dialect: SqlDialect, location?: string): unknown {
  if (isGatewayError(error)) return error;
  if (isUniqueViolation(error)) {
    return new GatewayError('GW_ERR_STORAGE_CONFLICT', {
      message: 'A record with this key already exists',
      cause: error,
    });
  }
  if (isUnavailable(error)) {
    return new GatewayError('GW_ERR_STORAGE_UNAVAILABLE', {
      message: `The ${dialect === 'postgres' ? 'PostgreSQL' : 'SQLite'} database is unavailable`,
      cause: error,
    });
  }
  if (isCorrupt(error)) {
    return new GatewayError('GW_ERR_STORAGE_CORRUPT', {
      message: `The database file "${location ?? 'unknown'}" is not a valid SQLite database`,
      details: { file: location },
      cause: error,
    });
  }
  return error;
}
