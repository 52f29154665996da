import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '#core/config';
import { createLogger } from '#core/log';
import { createPostgresDatabase, createSqliteDatabase, type Database } from '#core/storage';
import { isolatedPostgres, requirePostgres } from '#testing/services';
import { type AuthConfig, authConfigSchema } from './config.ts';
import { parsePasswordHash } from './password.ts';
import { createAuthService } from './service.ts';
import type { AuthTables } from './tables.ts';
import { manualClock, temporaryDir, rejectsWith } from './test-support.ts';

const log = createLogger({ level: 'silent' });
const pg = requirePostgres();
const MINUTE = 60_000;
const PASSWORD = 'correct horse battery staple';

async function authConfig(extra = ''): Promise<AuthConfig> {
  const yaml = `password: { scrypt: { ln: 10 } }\nlockout: { maxFailures: 3, window: 15m, lockFor: 10m, backoffBase: 1s, account: { maxFailures: 6, maxDelay: 8s } }\n${extra}`;
  return (await loadConfig(authConfigSchema, { text: yaml })).config;
}

async function world(extra = '', db?: Database, dataDir?: string) {
  const dir = await temporaryDir('auth');
  const database = db ?? (await createSqliteDatabase({ file: ':memory:' }));
  const clock = manualClock();
  const auth = await createAuthService({
    db: database,
    clock,
    log,
    dataDir: dataDir ?? dir.path,
    config: await authConfig(extra),
  });
  return {
    auth,
    clock,
    db: database,
    dir: dir.path,
    async [Symbol.asyncDispose]() {
      auth.close();
      if (db === undefined) await database.close();
      await dir[Symbol.asyncDispose]();
    },
  };
}

const bearer = (token: string, clientIp = '127.0.0.1') => ({ bearer: token, clientIp });

/**
 * A name stored before names like "u_…" were refused may equal another account's id; that id
 * must keep naming the other account. (SQLite happened to return the id match of the old
 * single OR query first; PostgreSQL returns rows in storage order.)
 */
async function idBeforeName(open: () => Database | Promise<Database>) {
  const db = await open();
  try {
    await using w = await world('', db);
    const bob = await w.auth.users.create({ username: 'bob', password: PASSWORD }, 'test');
    const alice = await w.auth.users.create({ username: 'alice', password: PASSWORD }, 'test');
    await rejectsWith(
      w.auth.users.create({ username: 'u_x', password: PASSWORD }, 'test'),
      'GW_ERR_REQUEST_INVALID',
      /reserved for user ids/,
    );
    // Such a name could be stored before the rule: its account still answers to its name only.
    await w.db
      .kysely<AuthTables>()
      .updateTable('auth_users')
      .set({ username: alice.id })
      .where('id', '=', bob.id)
      .execute();
    // PostgreSQL writes an updated row anew: touching Alice now stores her after Bob.
    await w.db
      .kysely<AuthTables>()
      .updateTable('auth_users')
      .set({ updated_at: 1 })
      .where('id', '=', alice.id)
      .execute();
    assert.equal((await w.auth.users.get(alice.id)).id, alice.id);
    await w.auth.users.update(alice.id, { disabled: true }, 'test');
    assert.equal((await w.auth.users.get(bob.id)).disabled, false);
  } finally {
    await db.close();
  }
}

/**
 * An attacker rotating addresses (2 failures each, under the per-address lock) keeps the
 * account-wide backoff in force; the owner's known address still logs in at once, a fresh one
 * is refused, and an address stays known for 30 days only.
 */
async function knownAddressesSkipAccountBackoff(w: Awaited<ReturnType<typeof world>>): Promise<void> {
  await w.auth.users.create({ username: 'alice', password: PASSWORD }, 'test');
  const known = '192.0.2.10';
  const fresh = '2001:db8:77::1';
  await w.auth.login('alice', PASSWORD, known);
  let failures = 0;
  const attack = async (addresses: number, round: number) => {
    for (let a = 0; a < addresses; a++) {
      for (let i = 0; i < 2; i++) {
        w.clock.advance(8000);
        await rejectsWith(
          w.auth.login('alice', `wrong-password-${i}`, `203.0.${round}.${a}`),
          'GW_ERR_AUTH_INVALID_CREDENTIALS',
        );
        failures++;
      }
    }
  };
  await attack(32, 0);
  assert.ok(failures >= 60);
  await rejectsWith(w.auth.login('alice', PASSWORD, fresh), 'GW_ERR_AUTH_LOCKED', /8 s/);
  // The owner, from a known address, is not delayed at all.
  await w.auth.login('alice', PASSWORD, known);
  // That login does not lift the backoff for everyone else.
  await rejectsWith(w.auth.login('alice', PASSWORD, fresh), 'GW_ERR_AUTH_LOCKED', /8 s/);
  assert.ok((await w.auth.users.get('alice')).lockedUntil !== undefined);
  // A known address still has its own per-address lock.
  for (const step of [0, 1000, 2000]) {
    w.clock.advance(step);
    await rejectsWith(w.auth.login('alice', 'wrong-password', known), 'GW_ERR_AUTH_INVALID_CREDENTIALS');
  }
  await rejectsWith(w.auth.login('alice', PASSWORD, known), 'GW_ERR_AUTH_LOCKED', /600 s/);
  // 30 days after its last successful login, an address is unknown again.
  w.clock.advance(30 * 24 * 60 * MINUTE);
  await attack(4, 1);
  await rejectsWith(w.auth.login('alice', PASSWORD, known), 'GW_ERR_AUTH_LOCKED', /4 s/);
  // A new password forgets the known addresses: one that logged in with the old password does
  // not skip the backoff of guesses at the new one (it is known again after its next login).
  w.clock.advance(10 * MINUTE);
  const other = '192.0.2.20';
  await w.auth.login('alice', PASSWORD, other);
  const NEW_PASSWORD = 'a-new-password-for-alice';
  await w.auth.users.setPassword('alice', NEW_PASSWORD);
  await attack(32, 2);
  await rejectsWith(w.auth.login('alice', NEW_PASSWORD, other), 'GW_ERR_AUTH_LOCKED');
}

void describe('auth service', () => {
  void it('bootstraps admin once with a random 24-character password', async () => {
    await using w = await world();
    const first = await w.auth.ensureAdmin();
    assert.equal(first.created, true);
    assert.equal(first.generated, true);
    assert.equal(first.password?.length, 24);
    assert.deepEqual(await w.auth.ensureAdmin(), { created: false, username: 'admin' });
    const tokens = await w.auth.login('admin', first.password ?? '');
    assert.equal(tokens.tokenType, 'Bearer');
    assert.equal(tokens.expiresIn, 900);
    const principal = await w.auth.authenticate(bearer(tokens.accessToken));
    assert.equal(principal.name, 'admin');
    assert.deepEqual(principal.bindings, [{ role: 'admin', namespace: '*' }]);
  });

  void it('bootstraps with the configured admin password', async () => {
    await using w = await world('adminPassword: "configured-password-1"\n');
    assert.deepEqual(await w.auth.ensureAdmin(), {
      created: true,
      username: 'admin',
      password: 'configured-password-1',
      generated: false,
    });
    await w.auth.login('admin', 'configured-password-1');
  });

  void it('refuses wrong passwords and unknown users with the same answer', async () => {
    await using w = await world();
    await w.auth.users.create({ username: 'alice', password: PASSWORD }, 'test');
    await rejectsWith(
      w.auth.login('alice', 'wrong password!!'),
      'GW_ERR_AUTH_INVALID_CREDENTIALS',
      /user name or password/,
    );
    await rejectsWith(
      w.auth.login('mallory', PASSWORD),
      'GW_ERR_AUTH_INVALID_CREDENTIALS',
      /user name or password/,
    );
    w.clock.advance(1000);
    await rejectsWith(w.auth.login('alice', ''), 'GW_ERR_AUTH_INVALID_CREDENTIALS');
  });

  void it('backs off exponentially, locks after repeated failures and unlocks after the lock period', async () => {
    await using w = await world();
    await w.auth.users.create({ username: 'alice', password: PASSWORD }, 'test');
    await rejectsWith(w.auth.login('alice', 'wrong-password-1'), 'GW_ERR_AUTH_INVALID_CREDENTIALS');
    // Inside the 1 s backoff even the right password is refused, without being checked.
    await rejectsWith(w.auth.login('alice', PASSWORD), 'GW_ERR_AUTH_LOCKED', /1 s/);
    w.clock.advance(1000);
    await rejectsWith(w.auth.login('alice', 'wrong-password-2'), 'GW_ERR_AUTH_INVALID_CREDENTIALS');
    w.clock.advance(1000);
    await rejectsWith(w.auth.login('alice', PASSWORD), 'GW_ERR_AUTH_LOCKED', /1 s/);
    w.clock.advance(1000);
    await rejectsWith(w.auth.login('alice', 'wrong-password-3'), 'GW_ERR_AUTH_INVALID_CREDENTIALS');
    await rejectsWith(w.auth.login('alice', PASSWORD), 'GW_ERR_AUTH_LOCKED', /600 s/);
    // The lock is on this address (the caller gave none), not on the account.
    assert.equal((await w.auth.users.get('alice')).lockedUntil, undefined);
    w.clock.advance(10 * MINUTE - 1000);
    await rejectsWith(w.auth.login('alice', PASSWORD), 'GW_ERR_AUTH_LOCKED', /1 s/);
    w.clock.advance(1000);
    await w.auth.login('alice', PASSWORD);
    // Success resets the counter: a new failure only costs the base delay.
    await rejectsWith(w.auth.login('alice', 'wrong-password-4'), 'GW_ERR_AUTH_INVALID_CREDENTIALS');
    w.clock.advance(1000);
    await w.auth.login('alice', PASSWORD);
  });

  void it('locks an account only for the address that failed; the right password works from another', async () => {
    await using w = await world();
    await w.auth.users.create({ username: 'alice', password: PASSWORD }, 'test');
    const attacker = '203.0.113.9';
    for (const step of [0, 1000, 2000]) {
      w.clock.advance(step);
      await rejectsWith(w.auth.login('alice', 'wrong-password', attacker), 'GW_ERR_AUTH_INVALID_CREDENTIALS');
    }
    await rejectsWith(w.auth.login('alice', PASSWORD, attacker), 'GW_ERR_AUTH_LOCKED', /600 s/);
    // Alice, elsewhere, is neither locked nor delayed, and her login does not unlock the attacker.
    await w.auth.login('alice', PASSWORD, '198.51.100.7');
    await rejectsWith(w.auth.login('alice', PASSWORD, attacker), 'GW_ERR_AUTH_LOCKED');
    // The re-authentication of a password change counts the same way.
    await rejectsWith(w.auth.checkPassword('alice', PASSWORD, attacker), 'GW_ERR_AUTH_LOCKED');
    await w.auth.checkPassword('alice', PASSWORD, '198.51.100.7');
    // An IPv6 host counts as its /64, so it cannot take a fresh address for every guess.
    for (const [step, ip] of [
      [0, '2001:db8:1:2::1'],
      [1000, '2001:db8:1:2::abcd'],
      [2000, '2001:db8:1:2:ffff::9'],
    ] as const) {
      w.clock.advance(step);
      await rejectsWith(w.auth.login('alice', 'wrong-password', ip), 'GW_ERR_AUTH_INVALID_CREDENTIALS');
    }
    await rejectsWith(w.auth.login('alice', PASSWORD, '2001:db8:1:2::77'), 'GW_ERR_AUTH_LOCKED', /600 s/);
    await w.auth.login('alice', PASSWORD, '2001:db8:1:3::1');
  });

  void it('slows guesses from many addresses account-wide with a capped backoff, never a lock', async () => {
    await using w = await world();
    await w.auth.users.create({ username: 'alice', password: PASSWORD }, 'test');
    const fail = (i: number) => w.auth.login('alice', `wrong-password-${i}`, `203.0.113.${i}`);
    // One failure per address stays under the per-address lock; the sixth overall starts the
    // account-wide backoff (1 s), which doubles and is capped at account.maxDelay (8 s).
    for (let i = 1; i <= 5; i++) await rejectsWith(fail(i), 'GW_ERR_AUTH_INVALID_CREDENTIALS');
    await w.auth.login('alice', PASSWORD, '198.51.100.7');
    for (let i = 1; i <= 6; i++) await rejectsWith(fail(i + 10), 'GW_ERR_AUTH_INVALID_CREDENTIALS');
    // A fresh address (one alice never logged in from) waits out the account-wide backoff.
    const fresh = '198.51.100.8';
    await rejectsWith(w.auth.login('alice', PASSWORD, fresh), 'GW_ERR_AUTH_LOCKED', /1 s/);
    const delays: string[] = [];
    for (let i = 0; i < 5; i++) {
      w.clock.advance(8000);
      await rejectsWith(fail(i + 20), 'GW_ERR_AUTH_INVALID_CREDENTIALS');
      await assert.rejects(w.auth.login('alice', PASSWORD, fresh), (e: { message: string }) => {
        delays.push(/(\d+) s/.exec(e.message)?.[1] ?? e.message);
        return true;
      });
    }
    assert.deepEqual(delays, ['2', '4', '8', '8', '8']);
    // The account shows the backoff; once it passes, the right password works from anywhere.
    assert.ok((await w.auth.users.get('alice')).lockedUntil !== undefined);
    w.clock.advance(8000);
    await w.auth.login('alice', PASSWORD, fresh);
  });

  void it('exempts addresses the account logged in from recently from the account-wide backoff (SQLite)', async () => {
    await using w = await world();
    await knownAddressesSkipAccountBackoff(w);
  });

  void it(
    'exempts addresses the account logged in from recently from the account-wide backoff (PostgreSQL)',
    pg.options,
    async () => {
      await using schema = await isolatedPostgres(pg.need(), 'auth_known');
      const db = createPostgresDatabase({ url: schema.url });
      try {
        await using w = await world('', db);
        await knownAddressesSkipAccountBackoff(w);
      } finally {
        await db.close();
      }
    },
  );

  void it('unlock clears the locks of every address and the account-wide backoff', async () => {
    await using w = await world();
    await w.auth.users.create({ username: 'alice', password: PASSWORD }, 'test');
    for (const [step, ip] of [
      [0, '203.0.113.1'],
      [0, '203.0.113.2'],
      [1000, '203.0.113.1'],
      [2000, '203.0.113.1'],
    ] as const) {
      w.clock.advance(step);
      await rejectsWith(w.auth.login('alice', 'wrong-password', ip), 'GW_ERR_AUTH_INVALID_CREDENTIALS');
    }
    await rejectsWith(w.auth.login('alice', PASSWORD, '203.0.113.1'), 'GW_ERR_AUTH_LOCKED', /600 s/);
    const unlocked = await w.auth.unlock('alice');
    assert.deepEqual(unlocked, { id: unlocked.id, username: 'alice', accountBackoff: false, addresses: 2 });
    await w.auth.login('alice', PASSWORD, '203.0.113.1');
    await w.auth.login('alice', PASSWORD, '203.0.113.2');
    await rejectsWith(w.auth.unlock('nobody'), 'GW_ERR_USER_NOT_FOUND');
  });

  void it('locks unknown user names exactly like real ones', async () => {
    await using w = await world();
    await w.auth.users.create({ username: 'alice', password: PASSWORD }, 'test');
    const trace = async (username: string) => {
      const codes: string[] = [];
      const steps = [
        [0, 'a'],
        [0, 'a'],
        [1000, 'a'],
        [0, 'a'],
        [2000, 'a'],
        [0, 'a'],
        [4000, 'b'],
        [0, 'c'],
        [0, 'd'],
        [0, 'e'],
        [0, 'f'],
        [0, 'g'],
        [0, 'a'],
      ] as const;
      for (const [step, client] of steps) {
        w.clock.advance(step);
        codes.push(
          await w.auth.login(username, 'wrong-password', `client-${client}`).then(
            () => 'ok',
            (e: { code: string }) => e.code,
          ),
        );
      }
      return codes;
    };
    const real = await trace('alice');
    assert.deepEqual(await trace('mallory'), real);
    assert.ok(real.includes('GW_ERR_AUTH_LOCKED'));
  });

  void it('lets only one of a burst of parallel guesses be checked before the backoff applies', async () => {
    await using w = await world();
    await w.auth.users.create({ username: 'alice', password: PASSWORD }, 'test');
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => w.auth.login('alice', `wrong-password-${i}`)),
    );
    const codes = results.map((r) => (r.status === 'rejected' ? (r.reason as { code: string }).code : 'ok'));
    assert.equal(codes.filter((c) => c === 'GW_ERR_AUTH_INVALID_CREDENTIALS').length, 1, codes.join());
    assert.equal(codes.filter((c) => c === 'GW_ERR_AUTH_LOCKED').length, 5, codes.join());
  });

  void it('finds a user by id before by name (SQLite)', () =>
    idBeforeName(() => createSqliteDatabase({ file: ':memory:' })));

  void it('finds a user by id before by name (PostgreSQL)', pg.options, async () => {
    await using schema = await isolatedPostgres(pg.need(), 'auth_lookup');
    await idBeforeName(() => createPostgresDatabase({ url: schema.url }));
  });

  void it('rehashes a password at login when the scrypt parameters change', async () => {
    await using dir = await temporaryDir('rehash');
    const db = await createSqliteDatabase({ file: ':memory:' });
    const open = async (yaml: string) =>
      createAuthService({
        db,
        clock: manualClock(),
        log,
        dataDir: dir.path,
        config: (await loadConfig(authConfigSchema, { text: yaml })).config,
      });
    const hashOf = async () =>
      (
        await db
          .kysely<AuthTables>()
          .selectFrom('auth_users')
          .select('password_hash')
          .executeTakeFirstOrThrow()
      ).password_hash;
    try {
      const weak = await open('password: { scrypt: { ln: 10 } }\n');
      await weak.users.create({ username: 'alice', password: PASSWORD }, 'test');
      weak.close();
      assert.equal(parsePasswordHash(await hashOf())?.params.ln, 10);
      const stronger = await open('password: { scrypt: { ln: 11 } }\n');
      await stronger.login('alice', PASSWORD);
      assert.equal(parsePasswordHash(await hashOf())?.params.ln, 11);
      await stronger.login('alice', PASSWORD);
      stronger.close();
    } finally {
      await db.close();
    }
  });

  void it('drops the stored bindings naming a deleted user by name, so a new account of that name does not inherit them', async () => {
    await using w = await world();
    await w.auth.ensureAdmin({ password: PASSWORD });
    await w.auth.users.create({ username: 'alice', password: PASSWORD }, 'test');
    await w.auth.bindings.grant('user:alice', { role: 'admin', namespace: '*' }, 'test');
    await w.auth.bindings.grant('user:alice', { role: 'reader', namespace: 'team-a' }, 'test');
    assert.equal((await w.auth.users.get('alice')).roles.length, 2);
    await w.auth.users.delete('alice');
    assert.deepEqual(await w.auth.bindings.list('user:alice'), []);
    const again = await w.auth.users.create({ username: 'alice', password: PASSWORD }, 'test');
    assert.deepEqual(again.roles, []);
    const principal = await w.auth.authenticate(bearer((await w.auth.login('alice', PASSWORD)).accessToken));
    assert.deepEqual(principal.bindings, []);
  });
});
