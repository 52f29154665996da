import type { Clock } from '#core/clock';
import { GatewayError } from '#core/errors';
import type { BindingStore, RoleBinding } from '#core/rbac';
import { type Database, isUniqueViolation } from '#core/storage';
import type { AuthConfig } from './config.ts';
import { type FailureState, KNOWN_ADDRESS_FOR, NO_FAILURES } from './lockout.ts';
import { hashPassword, type ScryptParams } from './password.ts';
import { randomId } from './secrets.ts';
import { AUTH_MIGRATIONS, type AuthTables, type UserRow } from './tables.ts';

/** A user as the API shows it: never the password hash. */
export interface User {
  readonly id: string;
  readonly username: string;
  readonly disabled: boolean;
  readonly roles: readonly RoleBinding[];
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly lastLoginAt?: string;
  readonly lockedUntil?: string;
}

export interface CreateUserInput {
  readonly username: string;
  readonly password: string;
  readonly roles?: readonly RoleBinding[];
  readonly disabled?: boolean;
}

export interface UpdateUserInput {
  readonly roles?: readonly RoleBinding[];
  readonly disabled?: boolean;
}

const USERNAME = /^[a-z0-9][a-z0-9._@-]{0,127}$/;
// User ids are this prefix and hex; `/api/users/:id` takes an id or a name, so no new name may
// start with it.
const USER_ID_PREFIX = 'u_';

/** The binding subject of a user id. */
export const userSubject = (id: string) => `user:${id}`;

/** Both subjects a binding may name a user by: its id and its name. */
export const userSubjects = (id: string, username: string) => [userSubject(id), `user:${username}`];

const iso = (ms: number) => new Date(ms).toISOString();

/** Checks the password policy; GW_ERR_USER_PASSWORD_WEAK otherwise. */
export function checkPasswordPolicy(password: string, minLength: number): void {
  if (typeof password !== 'string' || password.length < minLength) {
    throw new GatewayError('GW_ERR_USER_PASSWORD_WEAK', {
      message: `Passwords need at least ${minLength} characters`,
      details: { minLength },
    });
  }
}

/** A user row by id, else by name; GW_ERR_USER_NOT_FOUND otherwise. */
async function findUser(db: Database, idOrName: string): Promise<UserRow> {
  const k = db.kysely<AuthTables>();
  // By id first: an account created before names like "u_…" were refused may be named after
  // another account's id, and the id must keep naming that other account.
  const found =
    (await k.selectFrom('auth_users').selectAll().where('id', '=', idOrName).executeTakeFirst()) ??
    (await k.selectFrom('auth_users').selectAll().where('username', '=', idOrName).executeTakeFirst());
  if (found === undefined) {
    throw new GatewayError('GW_ERR_USER_NOT_FOUND', {
      message: `No user "${idOrName}"`,
      details: { user: idOrName },
    });
  }
  return found;
}

/** Deletes the failure counters of a user; the number of addresses that had some. */
async function clearLoginFailures(db: Database, id: string): Promise<number> {
  const k = db.kysely<AuthTables>();
  await k.updateTable('auth_users').set(NO_FAILURES).where('id', '=', id).execute();
  const deleted = await k.deleteFrom('auth_login_failures').where('user_id', '=', id).executeTakeFirst();
  return Number(deleted.numDeletedRows);
}

/** Deletes a user's login history: the failure rows of every address and the known addresses. */
async function forgetLogins(db: Database, id: string): Promise<void> {
  const k = db.kysely<AuthTables>();
  await k.deleteFrom('auth_login_failures').where('user_id', '=', id).execute();
  await k.deleteFrom('auth_known_addresses').where('user_id', '=', id).execute();
}

/** What clearing a user's failed logins found. */
export interface UnlockResult {
  readonly id: string;
  readonly username: string;
  /** Client addresses (IPv6 /64s) that had failures or a lock. */
  readonly addresses: number;
  /** Whether the account-wide backoff was in force. */
  readonly accountBackoff: boolean;
}

/**
 * Clears every failed-login counter and lock of a user (all addresses and the account-wide
 * backoff) directly in the database, so it works while the server is down; the server keeps
 * no copy of these counters for existing accounts, so it also takes effect on a running one.
 */
export async function unlockUser(db: Database, clock: Clock, idOrName: string): Promise<UnlockResult> {
  // The CLI opens the database itself; a running server migrated it at start.
  await db.migrate({ module: 'core-auth', migrations: AUTH_MIGRATIONS });
  return unlockRow(db, clock, idOrName);
}

async function unlockRow(db: Database, clock: Clock, idOrName: string): Promise<UnlockResult> {
  const user = await findUser(db, idOrName);
  return {
    id: user.id,
    username: user.username,
    accountBackoff: user.locked_until !== null && user.locked_until > clock.now(),
    addresses: await clearLoginFailures(db, user.id),
  };
}

/** User records and their role bindings. Sessions are revoked by the caller on sensitive changes. */
export function createUserStore(options: {
  readonly db: Database;
  readonly clock: Clock;
  readonly bindings: BindingStore;
  readonly password: AuthConfig['password'];
}) {
  const { db, clock, bindings } = options;
  const k = () => db.kysely<AuthTables>();
  const params: ScryptParams = options.password.scrypt;

  const toUser = async (row: UserRow): Promise<User> => ({
    id: row.id,
    username: row.username,
    disabled: row.disabled !== 0,
    roles: await bindings.resolve(userSubjects(row.id, row.username)),
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
    ...(row.last_login_at === null ? {} : { lastLoginAt: iso(row.last_login_at) }),
    ...(row.locked_until === null || row.locked_until <= clock.now()
      ? {}
      : { lockedUntil: iso(row.locked_until) }),
  });

  const row = (idOrName: string) => findUser(db, idOrName);

  return {
    row,
    toUser,
    async byName(username: string): Promise<UserRow | undefined> {
      return k().selectFrom('auth_users').selectAll().where('username', '=', username).executeTakeFirst();
    },
    async count(): Promise<number> {
      const r = await k()
        .selectFrom('auth_users')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .executeTakeFirst();
      return Number(r?.n ?? 0);
    },
    async create(input: CreateUserInput, actor: string): Promise<User> {
      if (typeof input.username !== 'string' || !USERNAME.test(input.username)) {
        throw new GatewayError('GW_ERR_REQUEST_INVALID', {
          message: `Invalid user name "${input.username}"`,
          details: {
            errors: [{ field: 'username', expected: 'lower-case letters, digits, ".", "_", "@", "-"' }],
          },
        });
      }
      if (input.username.startsWith(USER_ID_PREFIX)) {
        throw new GatewayError('GW_ERR_REQUEST_INVALID', {
          message: `Invalid user name "${input.username}": names starting with "${USER_ID_PREFIX}" are reserved for user ids`,
          details: {
            errors: [
              { field: 'username', expected: `a name not starting with "${USER_ID_PREFIX}" (user ids do)` },
            ],
          },
        });
      }
      checkPasswordPolicy(input.password, options.password.minLength);
      const now = clock.now();
      const id = `${USER_ID_PREFIX}${randomId(9)}`;
      const values: UserRow = {
        id,
        username: input.username,
        password_hash: await hashPassword(input.password, params),
        disabled: input.disabled === true ? 1 : 0,
        failed_logins: 0,
        last_failure_at: null,
        locked_until: null,
        created_at: now,
        updated_at: now,
        last_login_at: null,
      };
      try {
        await k().insertInto('auth_users').values(values).execute();
      } catch (error) {
        if (isUniqueViolation(error)) {
          throw new GatewayError('GW_ERR_USER_EXISTS', {
            message: `User "${input.username}" already exists`,
            cause: error,
          });
        }
        throw error;
      }
      if (input.roles !== undefined) await bindings.replace(userSubject(id), input.roles, actor);
      return toUser(values);
    },
    async list(): Promise<User[]> {
      const rows = await k().selectFrom('auth_users').selectAll().orderBy('username').execute();
      return Promise.all(rows.map(toUser));
    },
    async get(idOrName: string): Promise<User> {
      return toUser(await row(idOrName));
    },
    async update(idOrName: string, input: UpdateUserInput, actor: string): Promise<User> {
      const existing = await row(idOrName);
      if (input.roles !== undefined) await bindings.replace(userSubject(existing.id), input.roles, actor);
      // A change of roles is a change of the account too: `updatedAt` tells an auditor when.
      if (input.disabled !== undefined || input.roles !== undefined) {
        await k()
          .updateTable('auth_users')
          .set({
            ...(input.disabled === undefined ? {} : { disabled: input.disabled ? 1 : 0 }),
            updated_at: clock.now(),
          })
          .where('id', '=', existing.id)
          .execute();
      }
      return toUser(await row(existing.id));
    },
    async delete(idOrName: string): Promise<UserRow> {
      const existing = await row(idOrName);
      await k().deleteFrom('auth_users').where('id', '=', existing.id).execute();
      await forgetLogins(db, existing.id);
      // Stored bindings may name the user by id or by name; left behind, the ones by name would
      // go to the next account created with that name.
      for (const subject of userSubjects(existing.id, existing.username)) {
        await bindings.replace(subject, [], 'system');
      }
      return existing;
    },
    async setPassword(idOrName: string, password: string): Promise<UserRow> {
      checkPasswordPolicy(password, options.password.minLength);
      const existing = await row(idOrName);
      // A new password also clears every failed-login counter (the account's and each address's)
      // and forgets the known addresses: an address that logged in with the old password (maybe
      // someone who had it) must not skip the account-wide backoff when guessing the new one.
      // The owner's address is known again at its first login with the new password.
      await k()
        .updateTable('auth_users')
        .set({ password_hash: await hashPassword(password, params), updated_at: clock.now(), ...NO_FAILURES })
        .where('id', '=', existing.id)
        .execute();
      await forgetLogins(db, existing.id);
      return existing;
    },
    /** The failure counters of one account from one client address. */
    async addressFailures(id: string, address: string): Promise<FailureState> {
      const found = await k()
        .selectFrom('auth_login_failures')
        .select(['failed_logins', 'last_failure_at', 'locked_until'])
        .where('user_id', '=', id)
        .where('address', '=', address)
        .executeTakeFirst();
      return found ?? NO_FAILURES;
    },
    /**
     * Stores a failed login: the account-wide counters and those of the address. Rows of the
     * account that no longer delay anything (last failure outside the window, no lock) are
     * dropped, so failures from many addresses do not pile up.
     */
    async recordFailure(
      id: string,
      failures: { readonly account: FailureState; readonly address: string; readonly pair: FailureState },
      window: number,
    ) {
      const now = clock.now();
      await k().updateTable('auth_users').set(failures.account).where('id', '=', id).execute();
      await k()
        .deleteFrom('auth_login_failures')
        .where('user_id', '=', id)
        .where('last_failure_at', '<', now - window)
        .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', now)]))
        .execute();
      const pair = { ...failures.pair, last_failure_at: failures.pair.last_failure_at ?? now };
      await k()
        .insertInto('auth_login_failures')
        .values({ user_id: id, address: failures.address, ...pair })
        .onConflict((oc) => oc.columns(['user_id', 'address']).doUpdateSet(pair))
        .execute();
    },
    /** Whether the account logged in successfully from this client address within `KNOWN_ADDRESS_FOR`. */
    async isKnownAddress(id: string, address: string): Promise<boolean> {
      const found = await k()
        .selectFrom('auth_known_addresses')
        .select('user_id')
        .where('user_id', '=', id)
        .where('address', '=', address)
        .where('last_login_at', '>', clock.now() - KNOWN_ADDRESS_FOR)
        .executeTakeFirst();
      return found !== undefined;
    },
    /**
     * Stores a successful login: the address becomes (or stays) known, and its own counters end.
     * The account-wide counters are reset unless `keepAccountBackoff` (a known address that
     * passed during the backoff says nothing about the failures from elsewhere).
     */
    async recordSuccess(
      id: string,
      address: string,
      rehashed: string | undefined,
      keepAccountBackoff = false,
    ) {
      const now = clock.now();
      await k()
        .updateTable('auth_users')
        .set({
          ...(keepAccountBackoff ? {} : NO_FAILURES),
          last_login_at: now,
          ...(rehashed === undefined ? {} : { password_hash: rehashed }),
        })
        .where('id', '=', id)
        .execute();
      await k()
        .deleteFrom('auth_known_addresses')
        .where('user_id', '=', id)
        .where('last_login_at', '<=', now - KNOWN_ADDRESS_FOR)
        .execute();
      await k()
        .insertInto('auth_known_addresses')
        .values({ user_id: id, address, last_login_at: now })
        .onConflict((oc) => oc.columns(['user_id', 'address']).doUpdateSet({ last_login_at: now }))
        .execute();
      // Only this address's lock ends: a login elsewhere says nothing about who failed here.
      await k()
        .deleteFrom('auth_login_failures')
        .where('user_id', '=', id)
        .where('address', '=', address)
        .execute();
    },
    unlock: (idOrName: string) => unlockRow(db, clock, idOrName),
  };
}

/** User store operations. */
export type UserStore = ReturnType<typeof createUserStore>;
