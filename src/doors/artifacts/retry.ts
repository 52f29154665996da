import { GatewayError } from '#core/errors';
import { lockConflictState } from '#core/storage';

/**
 * Runs `transaction` (a whole database transaction, nothing outside it) and runs it once more
 * when PostgreSQL aborted it on a deadlock or serialization failure. A second abort becomes
 * GW_ERR_STORAGE_UNAVAILABLE (503, retriable) naming the conflict, instead of an internal error.
 */
export async function retryOnLockConflict<T>(what: string, transaction: () => Promise<T>): Promise<T> {
  try {
    return await transaction();
  } catch (first) {
    if (lockConflictState(first) === undefined) throw first;
    try {
      return await transaction();
    } catch (second) {
      const state = lockConflictState(second);
      if (state === undefined) throw second;
      throw new GatewayError('GW_ERR_STORAGE_UNAVAILABLE', {
        message: `The database aborted the ${what} twice on a lock conflict (SQLSTATE ${state}); retry the request`,
        details: { sqlState: state },
        cause: second,
      });
    }
  }
}
