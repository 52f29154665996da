import { GatewayError, isGatewayError } from '#core/errors';

/**
 * SQLSTATEs with which PostgreSQL aborts a transaction that lost a lock conflict:
 * deadlock_detected and serialization_failure. Running the transaction again is safe.
 */
const RETRIABLE_SQLSTATES = new Set(['40P01', '40001']);

/** The SQLSTATE of a driver error, or of the driver error a GatewayError wraps. */
function sqlState(error: unknown): string | undefined {
  const e = isGatewayError(error) ? error.cause : error;
  if (typeof e !== 'object' || e === null) return undefined;
  const code = (e as { readonly code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Runs `transaction` (a whole database transaction, nothing outside it) and runs it once more
 * when PostgreSQL aborted it on a deadlock or serialization failure. A second abort becomes
 * GW_ERR_STORAGE_UNAVAILABLE (503, retriable) naming the conflict, instead of an internal error.
 */
export async function retryOnLockConflict<T>(what: string, transaction: () => Promise<T>): Promise<T> {
  try {
    return await transaction();
  } catch (first) {
    if (!RETRIABLE_SQLSTATES.has(sqlState(first) ?? '')) throw first;
    try {
      return await transaction();
    } catch (second) {
      const state = sqlState(second);
      if (state === undefined || !RETRIABLE_SQLSTATES.has(state)) throw second;
      throw new GatewayError('GW_ERR_STORAGE_UNAVAILABLE', {
        message: `The database aborted the ${what} twice on a lock conflict (SQLSTATE ${state}); retry the request`,
        details: { sqlState: state },
        cause: second,
      });
    }
  }
}
