import type { Clock } from '#core/clock';
import { GatewayError } from '#core/errors';
import type { BindingStore, Principal } from '#core/rbac';
import type { AccessTokens } from './access-tokens.ts';
import { addressGroup } from './cidr.ts';
import type { AuthConfig } from './config.ts';
import { assertNotLocked, type FailureState, lockoutPolicies, NO_FAILURES, nextFailure } from './lockout.ts';
import { hashPassword, needsRehash, randomPassword, verifyPassword } from './password.ts';
import type { RefreshTokens } from './refresh-tokens.ts';
import type { UserRow } from './tables.ts';
import { type UserStore, userSubject, userSubjects } from './users.ts';

/** What login and refresh answer (the body of `POST /api/auth/login`). */
export interface TokenPair {
  readonly accessToken: string;
  readonly refreshToken: string;
  /** Seconds until the access token expires. */
  readonly expiresIn: number;
  readonly tokenType: 'Bearer';
}

const invalidCredentials = () =>
  new GatewayError('GW_ERR_AUTH_INVALID_CREDENTIALS', { message: 'The user name or password is wrong' });

// Failure counters of unknown user names kept in memory; bounded so a scan cannot exhaust it.
const PHANTOM_MAX = 10_000;

// Positive session checks are cached briefly so that every request does not read the database;
// a logout on this replica evicts at once, other replicas notice within this bound.
const SESSION_CACHE_MS = 5_000;
const SESSION_CACHE_MAX = 10_000;

/** Password login, refresh rotation, logout and session checks of access tokens. */
export async function createSessions(options: {
  readonly users: UserStore;
  readonly bindings: BindingStore;
  readonly access: AccessTokens;
  readonly refresh: RefreshTokens;
  readonly clock: Clock;
  readonly config: AuthConfig;
}) {
  const { users, bindings, access, refresh, clock, config } = options;
  // Verifying against this hash for unknown users costs the same time as a real check, so the
  // response time does not reveal which user names exist.
  const dummyHash = await hashPassword(randomPassword(), config.password.scrypt);
  const live = new Map<string, number>();
  // Keyed by name (account-wide) and by name and address; NUL cannot occur in either.
  const phantoms = new Map<string, FailureState>();
  const policies = lockoutPolicies(config.lockout);

  const rolesOf = (userId: string, username: string) => bindings.resolve(userSubjects(userId, username));

  const tokensFor = async (userId: string, username: string, familyId: string, refreshToken: string) => {
    const roles = await rolesOf(userId, username);
    const issued = await access.issue({ userId, username, bindings: roles, sessionId: familyId });
    return {
      accessToken: issued.token,
      refreshToken,
      expiresIn: Math.round((issued.expiresAt - clock.now()) / 1000),
      tokenType: 'Bearer' as const,
    };
  };

  const forget = (familyId: string) => live.delete(familyId);

  // Password checks of one user name run one at a time in this process, each re-reading the
  // failure counters, so a burst of parallel guesses cannot all slip in before the first
  // failure is recorded and the backoff applies.
  const queues = new Map<string, Promise<unknown>>();
  const serial = <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const run = (queues.get(key) ?? Promise.resolve()).then(fn, fn);
    queues.set(key, run);
    const cleanup = () => {
      if (queues.get(key) === run) queues.delete(key);
    };
    void run.then(cleanup, cleanup);
    return run;
  };

  /**
   * Verifies a password with backoff and lockout: per account and client address (the
   * configured lock), and account-wide (a capped backoff only, which addresses the account
   * logged in from within `KNOWN_ADDRESS_FOR` skip, so that nobody can lock the owner out).
   * Rehashes when the parameters changed.
   */
  const checkPassword = (username: string, password: string, clientIp: string): Promise<UserRow> =>
    serial(username, () => checkPasswordNow(username, password, addressGroup(clientIp)));

  const checkPasswordNow = async (username: string, password: string, address: string): Promise<UserRow> => {
    const row = await users.byName(username);
    if (row === undefined) {
      // Unknown names get the same backoff and lockout as real accounts, so that neither the
      // timing nor a missing "locked" answer reveals which names exist.
      const pairKey = `${username}\u0000${address}`;
      const account = phantoms.get(username) ?? NO_FAILURES;
      const pair = phantoms.get(pairKey) ?? NO_FAILURES;
      assertNotLocked(pair, clock.now());
      assertNotLocked(account, clock.now());
      await verifyPassword(password, dummyHash);
      if (phantoms.size >= PHANTOM_MAX - 1) phantoms.clear();
      phantoms.set(username, nextFailure(account, clock.now(), policies.account));
      phantoms.set(pairKey, nextFailure(pair, clock.now(), policies.address));
      throw invalidCredentials();
    }
    const pair = await users.addressFailures(row.id, address);
    assertNotLocked(pair, clock.now());
    // An address this account logged in from recently skips the account-wide backoff: failures
    // from many other addresses must not keep the owner out for good.
    const inBackoff = (row.locked_until ?? 0) > clock.now();
    const exempt = inBackoff && (await users.isKnownAddress(row.id, address));
    if (!exempt) assertNotLocked(row, clock.now());
    if (!(await verifyPassword(password, row.password_hash))) {
      await users.recordFailure(
        row.id,
        {
          account: nextFailure(row, clock.now(), policies.account),
          address,
          pair: nextFailure(pair, clock.now(), policies.address),
        },
        config.lockout.window,
      );
      throw invalidCredentials();
    }
    if (row.disabled !== 0) throw invalidCredentials();
    const rehashed = needsRehash(row.password_hash, config.password.scrypt)
      ? await hashPassword(password, config.password.scrypt)
      : undefined;
    await users.recordSuccess(row.id, address, rehashed, exempt);
    return row;
  };

  return {
    checkPassword,

    async login(
      username: string,
      password: string,
      clientIp: string,
    ): Promise<TokenPair & { readonly userId: string }> {
      const row = await checkPassword(username, password, clientIp);
      const session = await refresh.issue(row.id);
      return { ...(await tokensFor(row.id, row.username, session.familyId, session.token)), userId: row.id };
    },

    async refresh(token: string): Promise<TokenPair> {
      // Reuse revokes a family: its access tokens must stop working here at once.
      const next = await refresh.rotate(token, forget);
      const row = await users.row(next.userId).catch(() => undefined);
      if (row === undefined || row.disabled !== 0) {
        await refresh.revokeFamily(next.familyId);
        forget(next.familyId);
        throw new GatewayError('GW_ERR_AUTH_TOKEN_REVOKED', {
          message: 'The account of this session is disabled',
        });
      }
      return tokensFor(row.id, row.username, next.familyId, next.token);
    },

    async logout(refreshToken: string): Promise<{ familyId: string; userId: string }> {
      const family = await refresh.familyOf(refreshToken);
      await refresh.revokeFamily(family.familyId);
      forget(family.familyId);
      return family;
    },

    async logoutSession(familyId: string): Promise<void> {
      await refresh.revokeFamily(familyId);
      forget(familyId);
    },

    /**
     * The principal of a Gatehouse access token whose session is still live. Its bindings are
     * the user's current ones (the binding store, cached for `auth.cacheTtl` and emptied by every
     * change and configuration reload on this replica), not the copy the token was issued with:
     * a binding removed from the database or from `rbac.bindings` stops counting on the next
     * request, one added counts without a new login.
     */
    async principalOf(token: string): Promise<Principal & { readonly sessionId: string }> {
      const claims = await access.verify(token);
      const now = clock.now();
      const checked = live.get(claims.sessionId);
      if (checked === undefined || now - checked > SESSION_CACHE_MS) {
        if (await refresh.isFamilyRevoked(claims.sessionId)) {
          forget(claims.sessionId);
          throw new GatewayError('GW_ERR_AUTH_TOKEN_REVOKED', {
            message: 'The session of this access token has ended',
          });
        }
        if (live.size >= SESSION_CACHE_MAX) live.clear();
        live.set(claims.sessionId, now);
      }
      return {
        id: userSubject(claims.userId),
        kind: 'user',
        name: claims.username,
        bindings: await rolesOf(claims.userId, claims.username),
        expiresAt: claims.expiresAt,
        sessionId: claims.sessionId,
      };
    },

    /** Ends every session of a user (disable, password change, delete). */
    async revokeUser(userId: string): Promise<void> {
      await refresh.revokeUser(userId);
      live.clear();
    },
  };
}

/** Session operations. */
export type Sessions = Awaited<ReturnType<typeof createSessions>>;
