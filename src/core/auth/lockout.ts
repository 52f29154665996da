import { GatewayError } from '#core/errors';
import type { AuthConfig } from './config.ts';
import type { UserRow } from './tables.ts';

/** Failure counters: of an account (all addresses) or of one account and client address. */
export type FailureState = Pick<UserRow, 'failed_logins' | 'last_failure_at' | 'locked_until'>;

/** How failures of one counter delay and lock the next attempt. */
export interface FailurePolicy {
  /** Failures older than this are forgotten. */
  readonly window: number;
  /** Delay after the failure that starts the backoff, doubled after each further one. */
  readonly backoffBase: number;
  /** The failure count from which the backoff applies (1: from the first failure). */
  readonly backoffFrom: number;
  /** Upper bound of one backoff delay. */
  readonly maxDelay: number;
  /** The failure count that locks for `lockFor`; Infinity never locks. */
  readonly lockAt: number;
  readonly lockFor: number;
}

/**
 * How long a client address stays known after a successful login of an account: known addresses
 * are exempt from the account-wide backoff (not from their own per-address lock), so failures
 * from elsewhere cannot keep the account's owner out.
 */
export const KNOWN_ADDRESS_FOR = 30 * 24 * 60 * 60 * 1000;

/** No failures. */
export const NO_FAILURES: FailureState = { failed_logins: 0, last_failure_at: null, locked_until: null };

/**
 * The two policies of `auth.lockout`: per account and client address, the configured backoff and
 * lock; per account over all addresses, only a capped backoff from a much higher count, so that
 * failures from many addresses slow guessing without ever locking the account out for everyone.
 */
export function lockoutPolicies(config: AuthConfig['lockout']): {
  readonly address: FailurePolicy;
  readonly account: FailurePolicy;
} {
  return {
    address: {
      window: config.window,
      backoffBase: config.backoffBase,
      backoffFrom: 1,
      maxDelay: config.lockFor,
      lockAt: config.maxFailures,
      lockFor: config.lockFor,
    },
    account: {
      window: config.window,
      backoffBase: config.backoffBase,
      backoffFrom: config.account.maxFailures,
      maxDelay: config.account.maxDelay,
      lockAt: Number.POSITIVE_INFINITY,
      lockFor: 0,
    },
  };
}

/**
 * Throws GW_ERR_AUTH_LOCKED while `state` refuses attempts (a backoff delay or a lock). Checked
 * before the password, so attempts during a lock cannot confirm a guess.
 */
export function assertNotLocked(state: FailureState, now: number): void {
  const until = state.locked_until ?? 0;
  if (until > now) {
    const seconds = Math.ceil((until - now) / 1000);
    throw new GatewayError('GW_ERR_AUTH_LOCKED', {
      message: `Too many failed logins; try again in ${seconds} s`,
      details: { retryAfterSeconds: seconds },
      headers: { 'retry-after': String(seconds) },
    });
  }
}

/**
 * The counters after one more failed login. `locked_until` is when the next attempt is allowed:
 * the end of the lock once `lockAt` failures fell within the window, else the end of the
 * exponential backoff (the n-th failure counted from `backoffFrom` waits base·2^n, capped).
 */
export function nextFailure(state: FailureState, now: number, policy: FailurePolicy): FailureState {
  const inWindow = state.last_failure_at !== null && now - state.last_failure_at < policy.window;
  const failures = (inWindow ? state.failed_logins : 0) + 1;
  if (failures >= policy.lockAt)
    return { failed_logins: failures, last_failure_at: now, locked_until: now + policy.lockFor };
  const delay =
    failures < policy.backoffFrom
      ? 0
      : Math.min(policy.backoffBase * 2 ** (failures - policy.backoffFrom), policy.maxDelay);
  return { failed_logins: failures, last_failure_at: now, locked_until: delay > 0 ? now + delay : null };
}
