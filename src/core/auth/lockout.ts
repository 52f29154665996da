import { GatewayError } from '#core/errors';
import type { AuthConfig } from './config.ts';
import type { UserRow } from './tables.ts';

type Lockout = AuthConfig['lockout'];

/**
 * Throws GW_ERR_AUTH_LOCKED when the account is locked or inside its backoff delay. Checked
 * before the password, so attempts during a lock cannot confirm a guess.
 */
export function assertNotLocked(row: UserRow, now: number, policy: Lockout): void {
  let until = row.locked_until ?? 0;
  const recent = row.last_failure_at !== null && now - row.last_failure_at < policy.window;
  if (recent && row.failed_logins > 0 && row.last_failure_at !== null) {
    // Exponential backoff: the n-th consecutive failure makes the next attempt wait base·2^(n-1).
    const delay = Math.min(policy.backoffBase * 2 ** (row.failed_logins - 1), policy.lockFor);
    until = Math.max(until, row.last_failure_at + delay);
  }
  if (until > now) {
    const seconds = Math.ceil((until - now) / 1000);
    throw new GatewayError('GW_ERR_AUTH_LOCKED', {
      message: `Too many failed logins; try again in ${seconds} s`,
      details: { retryAfterSeconds: seconds },
      headers: { 'retry-after': String(seconds) },
    });
  }
}

/** The failure counters after one more failed login. */
export function nextFailure(
  row: UserRow,
  now: number,
  policy: Lockout,
): Pick<UserRow, 'failed_logins' | 'last_failure_at' | 'locked_until'> {
  const inWindow = row.last_failure_at !== null && now - row.last_failure_at < policy.window;
  const failures = (inWindow ? row.failed_logins : 0) + 1;
  return {
    failed_logins: failures,
    last_failure_at: now,
    locked_until: failures >= policy.maxFailures ? now + policy.lockFor : null,
  };
}
