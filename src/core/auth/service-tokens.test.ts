import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '#core/config';
import { createLogger } from '#core/log';
import { createMetrics, parseExposition, sampleValue } from '#core/metrics';
import type { Principal } from '#core/rbac';
import { createPostgresDatabase, createSqliteDatabase, type Database } from '#core/storage';
import { isolatedPostgres, requirePostgres } from '#testing/services';
import { authConfigSchema } from './config.ts';
import { createAuthService } from './service.ts';
import { createAdminAndPublisher, manualClock, rejectsWith, temporaryDir } from './test-support.ts';

const log = createLogger({ level: 'silent' });
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const PASSWORD = 'correct horse battery staple';

async function world(
  open: () => Promise<Database> = () => createSqliteDatabase({ file: ':memory:' }),
  extra: Pick<Parameters<typeof createAuthService>[0], 'roleAllowedCidrs'> = {},
) {
  const dir = await temporaryDir('auth-tokens');
  const db = await open();
  const clock = manualClock();
  const config = (await loadConfig(authConfigSchema, { text: 'password: { scrypt: { ln: 10 } }\n' })).config;
  const auth = await createAuthService({ db, clock, log, dataDir: dir.path, config, ...extra });
  await createAdminAndPublisher(auth.users, PASSWORD);
  const as = async (username: string): Promise<Principal> =>
    auth.authenticate({ bearer: (await auth.login(username, PASSWORD)).accessToken, clientIp: '127.0.0.1' });
  return {
    auth,
    clock,
    as,
    async [Symbol.asyncDispose]() {
      auth.close();
      await db.close();
      await dir[Symbol.asyncDispose]();
    },
  };
}

void describe('per-role address allow-lists', () => {
  void it('drop the bindings of a role outside its addresses for every caller of authenticate (the kv door too)', async () => {
    let roleAllowedCidrs: Record<string, string[]> = { publisher: ['10.0.0.0/8', 'fd00::/8'] };
    await using w = await world(undefined, { roleAllowedCidrs: () => roleAllowedCidrs });
    const bearer = (await w.auth.login('pub', PASSWORD)).accessToken;
    const roles = async (clientIp?: string) =>
      (await w.auth.authenticate({ bearer, ...(clientIp === undefined ? {} : { clientIp }) })).bindings.map(
        (b) => b.role,
      );
    assert.deepEqual(await roles('10.1.2.3'), ['publisher']);
    assert.deepEqual(await roles('fd00::1'), ['publisher']);
    assert.deepEqual(await roles('127.0.0.1'), []);
    assert.deepEqual(await roles(), [], 'no address, no restricted role');
    // Read per call: a reload applies at once.
    roleAllowedCidrs = {};
    assert.deepEqual(await roles('127.0.0.1'), ['publisher']);
  });
});

void describe('auth service tokens and keys', () => {
  void it('rotates refresh tokens; reusing a spent one revokes the whole family', async () => {
    await using w = await world();
    const login = await w.auth.login('pub', PASSWORD);
    const second = await w.auth.refresh(login.refreshToken);
    assert.notEqual(second.refreshToken, login.refreshToken);
    const third = await w.auth.refresh(second.refreshToken);
    await w.auth.authenticate({ bearer: third.accessToken });
    // An attacker replays the first, already spent token.
    await rejectsWith(w.auth.refresh(login.refreshToken), 'GW_ERR_AUTH_TOKEN_REVOKED', /already used/);
    // The legitimate holder's newest tokens stop working too.
    await rejectsWith(w.auth.refresh(third.refreshToken), 'GW_ERR_AUTH_TOKEN_REVOKED');
    await rejectsWith(w.auth.authenticate({ bearer: third.accessToken }), 'GW_ERR_AUTH_TOKEN_REVOKED');
    // Another session of the same user is untouched.
    const other = await w.auth.login('pub', PASSWORD);
    await w.auth.refresh(other.refreshToken);
  });

  void it('logout revokes the refresh token and the access tokens of the session', async () => {
    await using w = await world();
    const login = await w.auth.login('pub', PASSWORD);
    await w.auth.authenticate({ bearer: login.accessToken });
    await w.auth.logout(login.refreshToken);
    await rejectsWith(w.auth.refresh(login.refreshToken), 'GW_ERR_AUTH_TOKEN_REVOKED');
    await rejectsWith(w.auth.authenticate({ bearer: login.accessToken }), 'GW_ERR_AUTH_TOKEN_REVOKED');
    const byPrincipal = await w.auth.login('pub', PASSWORD);
    await w.auth.logoutPrincipal(await w.auth.authenticate({ bearer: byPrincipal.accessToken }));
    await rejectsWith(w.auth.refresh(byPrincipal.refreshToken), 'GW_ERR_AUTH_TOKEN_REVOKED');
  });

  void it('expires access tokens and refresh tokens', async () => {
    await using w = await world();
    const login = await w.auth.login('pub', PASSWORD);
    w.clock.advance(16 * MINUTE);
    await rejectsWith(w.auth.authenticate({ bearer: login.accessToken }), 'GW_ERR_AUTH_TOKEN_EXPIRED');
    const renewed = await w.auth.refresh(login.refreshToken);
    await w.auth.authenticate({ bearer: renewed.accessToken });
    w.clock.advance(7 * DAY + 1);
    await rejectsWith(w.auth.refresh(renewed.refreshToken), 'GW_ERR_AUTH_TOKEN_EXPIRED');
  });

  void it('refuses malformed and forged refresh tokens and untrusted bearers', async () => {
    await using w = await world();
    const login = await w.auth.login('pub', PASSWORD);
    const [id] = login.refreshToken.split('.');
    await rejectsWith(w.auth.refresh(`${id}.${'A'.repeat(43)}`), 'GW_ERR_AUTH_TOKEN_REVOKED', /not valid/);
    await rejectsWith(w.auth.refresh('garbage'), 'GW_ERR_AUTH_TOKEN_REVOKED', /not valid/);
    await rejectsWith(w.auth.authenticate({}), 'GW_ERR_AUTH_REQUIRED');
    await rejectsWith(w.auth.authenticate({ bearer: 'abc' }), 'GW_ERR_AUTH_TOKEN_INVALID', /malformed/);
    const foreignIssuer = `${Buffer.from('{"alg":"RS256","kid":"x"}').toString('base64url')}.${Buffer.from('{"iss":"https://evil.test","sub":"x"}').toString('base64url')}.AAAA`;
    await rejectsWith(
      w.auth.authenticate({ bearer: foreignIssuer }),
      'GW_ERR_AUTH_TOKEN_INVALID',
      /issuer is not trusted/,
    );
  });

  void it('authenticates API keys by header or bearer and refuses revoked, expired and tampered ones', async () => {
    await using w = await world();
    const admin = await w.as('admin');
    const { key, secret } = await w.auth.keys.create(admin, {
      name: 'ci',
      bindings: [{ role: 'consumer', namespace: 'team-a' }],
    });
    assert.match(secret, /^gh_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    const principal = await w.auth.authenticate({ apiKey: secret });
    assert.equal(principal.id, `key:${key.id}`);
    assert.equal(principal.kind, 'apikey');
    assert.deepEqual(principal.bindings, [{ role: 'consumer', namespace: 'team-a' }]);
    await w.auth.authenticate({ bearer: secret });
    // A key and a bearer token together are refused whichever is valid: they could name two
    // principals, and a proxy in front may have checked the other one.
    const { accessToken } = await w.auth.login('pub', PASSWORD);
    for (const bearer of [accessToken, 'forged', secret])
      await rejectsWith(
        w.auth.authenticate({ apiKey: secret, bearer }),
        'GW_ERR_AUTH_TOKEN_INVALID',
        /send one credential/,
      );
    assert.ok((await w.auth.keys.get(admin, key.id)).lastUsedAt !== undefined);
    assert.equal(
      JSON.stringify(await w.auth.keys.list(admin)).includes(secret.slice(-43)),
      false,
      'secret never listed',
    );
    await rejectsWith(
      w.auth.authenticate({ apiKey: `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}` }),
      'GW_ERR_AUTH_KEY_INVALID',
    );
    await rejectsWith(
      w.auth.authenticate({ apiKey: 'gh_0000000000000000_' + 'A'.repeat(43) }),
      'GW_ERR_AUTH_KEY_INVALID',
    );
    await rejectsWith(w.auth.authenticate({ apiKey: 'gh_nonsense' }), 'GW_ERR_AUTH_KEY_INVALID');
    await w.auth.keys.revoke(admin, key.id);
    await rejectsWith(w.auth.authenticate({ apiKey: secret }), 'GW_ERR_AUTH_KEY_INVALID');
    const expiring = await w.auth.keys.create(admin, {
      name: 'short',
      bindings: [{ role: 'reader', namespace: 'kv1' }],
      expiresAt: w.clock.now() + MINUTE,
    });
    await w.auth.authenticate({ apiKey: expiring.secret });
    w.clock.advance(MINUTE);
    await rejectsWith(w.auth.authenticate({ apiKey: expiring.secret }), 'GW_ERR_AUTH_KEY_INVALID', /expired/);
  });

  void it('enforces the allowed CIDRs of an API key', async () => {
    await using w = await world();
    const admin = await w.as('admin');
    const { secret } = await w.auth.keys.create(admin, {
      name: 'office',
      bindings: [{ role: 'reader', namespace: 'kv1' }],
      allowedCidrs: ['10.0.0.0/8', '2001:db8::/32'],
    });
    await w.auth.authenticate({ apiKey: secret, clientIp: '10.1.2.3' });
    await w.auth.authenticate({ apiKey: secret, clientIp: '::ffff:10.1.2.3' });
    await w.auth.authenticate({ apiKey: secret, clientIp: '2001:db8::7' });
    await rejectsWith(
      w.auth.authenticate({ apiKey: secret, clientIp: '192.168.1.1' }),
      'GW_ERR_AUTH_IP_NOT_ALLOWED',
    );
    await rejectsWith(w.auth.authenticate({ apiKey: secret }), 'GW_ERR_AUTH_IP_NOT_ALLOWED');
    await rejectsWith(
      w.auth.keys.create(admin, { name: 'bad', bindings: [], allowedCidrs: ['10.0.0.0/99'] }),
      'GW_ERR_REQUEST_INVALID',
    );
  });

  void it('stops role escalation through API keys and user management', async () => {
    await using w = await world();
    const admin = await w.as('admin');
    const pub = await w.as('pub');
    for (const bindings of [
      [{ role: 'admin', namespace: '*' }],
      [{ role: 'publisher', namespace: '*' }],
      [{ role: 'publisher', namespace: 'team-b' }],
      [{ role: 'operator', namespace: 'team-a' }],
    ] as const) {
      await rejectsWith(
        w.auth.keys.create(pub, { name: 'x', bindings }),
        'GW_ERR_RBAC_DENIED',
        /roles it does not hold/,
      );
    }
    const own = await w.auth.keys.create(pub, {
      name: 'mine',
      bindings: [{ role: 'publisher', namespace: 'team-a' }],
    });
    const adminKey = await w.auth.keys.create(admin, {
      name: 'admin-key',
      bindings: [{ role: 'admin', namespace: '*' }],
    });
    assert.deepEqual(
      (await w.auth.keys.list(pub)).map((k) => k.id),
      [own.key.id],
    );
    await rejectsWith(w.auth.keys.get(pub, adminKey.key.id), 'GW_ERR_KEY_NOT_FOUND');
    await rejectsWith(w.auth.keys.revoke(pub, adminKey.key.id), 'GW_ERR_KEY_NOT_FOUND');
    await w.auth.authenticate({ apiKey: adminKey.secret });
    // A key can never mint a wider key either.
    const keyPrincipal = await w.auth.authenticate({ apiKey: own.secret });
    await rejectsWith(
      w.auth.keys.create(keyPrincipal, { name: 'wider', bindings: [{ role: 'admin', namespace: 'team-a' }] }),
      'GW_ERR_RBAC_DENIED',
    );
  });

  void it("caps a key by what its owner could grant it now: a demoted owner's keys lose the roles the owner lost", async () => {
    await using w = await world();
    const pub = await w.as('pub');
    const own = await w.auth.keys.create(pub, {
      name: 'ci',
      bindings: [{ role: 'publisher', namespace: 'team-a' }],
    });
    const roles = async (secret: string) => (await w.auth.authenticate({ apiKey: secret })).bindings;
    assert.deepEqual(await roles(own.secret), [{ role: 'publisher', namespace: 'team-a' }]);
    // The owner is moved to another team: the key does not keep the old team.
    await w.auth.users.update('pub', { roles: [{ role: 'publisher', namespace: 'team-b' }] }, 'user:admin');
    assert.deepEqual(await roles(own.secret), [], 'the key lost what its owner lost');
    await w.auth.users.update('pub', { roles: [{ role: 'publisher', namespace: '*' }] }, 'user:admin');
    assert.deepEqual(await roles(own.secret), [{ role: 'publisher', namespace: 'team-a' }], 'and regains it');
    // An admin's key with roles the admin does not hold by name survives while the owner
    // administers keys, and loses them with that role.
    await w.auth.users.create(
      { username: 'ops', password: PASSWORD, roles: [{ role: 'admin', namespace: '*' }] },
      'user:admin',
    );
    const ops = await w.as('ops');
    const service = await w.auth.keys.create(ops, {
      name: 'deployer',
      bindings: [{ role: 'operator', namespace: 'team-a' }],
    });
    assert.deepEqual(await roles(service.secret), [{ role: 'operator', namespace: 'team-a' }]);
    await w.auth.users.update('ops', { roles: [{ role: 'consumer', namespace: 'team-a' }] }, 'user:admin');
    assert.deepEqual(await roles(service.secret), []);
    // Granted to the key itself by an administrator (key:<id>): not the owner's to take away.
    await w.auth.bindings.replace(
      `key:${service.key.id}`,
      [{ role: 'operator', namespace: 'team-a' }],
      'user:admin',
    );
    assert.deepEqual(await roles(service.secret), [{ role: 'operator', namespace: 'team-a' }]);
  });

  void it('disabling or deleting a user ends its sessions and keys', async () => {
    await using w = await world();
    const login = await w.auth.login('pub', PASSWORD);
    const pub = await w.auth.authenticate({ bearer: login.accessToken });
    const { secret } = await w.auth.keys.create(pub, {
      name: 'k',
      bindings: [{ role: 'publisher', namespace: 'team-a' }],
    });
    await w.auth.users.update('pub', { disabled: true }, 'user:admin');
    await rejectsWith(w.auth.authenticate({ bearer: login.accessToken }), 'GW_ERR_AUTH_TOKEN_REVOKED');
    await rejectsWith(w.auth.refresh(login.refreshToken), 'GW_ERR_AUTH_TOKEN_REVOKED');
    await rejectsWith(w.auth.authenticate({ apiKey: secret }), 'GW_ERR_AUTH_KEY_INVALID', /disabled/);
    await rejectsWith(w.auth.login('pub', PASSWORD), 'GW_ERR_AUTH_INVALID_CREDENTIALS');
    await w.auth.users.update('pub', { disabled: false }, 'user:admin');
    await w.auth.authenticate({ apiKey: secret });
    await w.auth.users.delete('pub');
    await rejectsWith(w.auth.authenticate({ apiKey: secret }), 'GW_ERR_AUTH_KEY_INVALID');
    await rejectsWith(w.auth.users.get('pub'), 'GW_ERR_USER_NOT_FOUND');
  });

  void it('counts logins and authentications by outcome', async () => {
    const dir = await temporaryDir('auth-metrics');
    const db = await createSqliteDatabase({ file: ':memory:' });
    const metrics = createMetrics({ processMetrics: false });
    const config = (await loadConfig(authConfigSchema, { text: 'password: { scrypt: { ln: 10 } }\n' }))
      .config;
    const auth = await createAuthService({
      db,
      clock: manualClock(),
      log,
      dataDir: dir.path,
      config,
      metrics,
    });
    try {
      await auth.ensureAdmin({ password: PASSWORD });
      const ok = await auth.login('admin', PASSWORD);
      await rejectsWith(auth.login('admin', 'wrong password here'), 'GW_ERR_AUTH_INVALID_CREDENTIALS');
      await auth.authenticate({ bearer: ok.accessToken });
      await rejectsWith(auth.authenticate({ apiKey: 'gh_x' }), 'GW_ERR_AUTH_KEY_INVALID');
      const samples = parseExposition((await metrics.render()).body);
      const value = (name: string, labels: Record<string, string>) => sampleValue(samples, name, labels);
      assert.equal(value('gatehouse_auth_logins_total', { outcome: 'ok' }), 1);
      assert.equal(value('gatehouse_auth_logins_total', { outcome: 'GW_ERR_AUTH_INVALID_CREDENTIALS' }), 1);
      assert.equal(value('gatehouse_auth_authentications_total', { method: 'token', outcome: 'ok' }), 1);
      assert.equal(
        value('gatehouse_auth_authentications_total', {
          method: 'apikey',
          outcome: 'GW_ERR_AUTH_KEY_INVALID',
        }),
        1,
      );
    } finally {
      auth.close();
      await db.close();
      await dir[Symbol.asyncDispose]();
    }
  });

  void it('never removes, disables or demotes the last administrator', async () => {
    await using w = await world();
    await rejectsWith(w.auth.users.delete('admin'), 'GW_ERR_USER_LAST_ADMIN');
    await rejectsWith(w.auth.users.update('admin', { disabled: true }, 't'), 'GW_ERR_USER_LAST_ADMIN');
    await rejectsWith(
      w.auth.users.update('admin', { roles: [{ role: 'admin', namespace: 'team-a' }] }, 't'),
      'GW_ERR_USER_LAST_ADMIN',
    );
    await w.auth.users.update('pub', { roles: [{ role: 'admin', namespace: '*' }] }, 't');
    await w.auth.users.update('admin', { disabled: true }, 't');
    await rejectsWith(w.auth.users.delete('pub'), 'GW_ERR_USER_LAST_ADMIN');
    await w.auth.users.update('admin', { disabled: false }, 't');
    await w.auth.users.delete('pub');
  });

  void it('moves updatedAt when the roles of a user change, as when it is disabled', async () => {
    await using w = await world();
    const before = await w.auth.users.get('pub');
    w.clock.advance(MINUTE);
    const after = await w.auth.users.update('pub', { roles: [{ role: 'reader', namespace: '*' }] }, 't');
    assert.equal(after.updatedAt, new Date(Date.parse(before.updatedAt) + MINUTE).toISOString());
    w.clock.advance(MINUTE);
    const disabled = await w.auth.users.update('pub', { disabled: true }, 't');
    assert.equal(disabled.updatedAt, new Date(Date.parse(before.updatedAt) + 2 * MINUTE).toISOString());
  });

  void it('keeps an administrator when two disable, demote or delete each other at the same time', async () => {
    await using w = await world();
    const global = { role: 'admin', namespace: '*' } as const;
    await w.auth.users.update('pub', { roles: [global] }, 't');
    const outcomes = await Promise.allSettled([
      w.auth.users.update('admin', { disabled: true }, 't'),
      w.auth.users.update('pub', { disabled: true }, 't'),
    ]);
    assert.deepEqual(outcomes.map((o) => o.status).toSorted(), ['fulfilled', 'rejected']);
    const enabled = (await w.auth.users.list()).filter((u) => !u.disabled);
    assert.equal(enabled.length, 1);
    await w.auth.users.update('admin', { disabled: false }, 't');
    await w.auth.users.update('pub', { disabled: false }, 't');
    const mixed = await Promise.allSettled([
      w.auth.users.delete('admin'),
      w.auth.bindings.revoke(`user:${(await w.auth.users.get('pub')).id}`, global),
    ]);
    assert.deepEqual(mixed.map((o) => o.status).toSorted(), ['fulfilled', 'rejected']);
  });

  void it('never revokes the last administrator binding through the role-binding API', async () => {
    await using w = await world();
    const admin = await w.auth.users.get('admin');
    const global = { role: 'admin', namespace: '*' } as const;
    await rejectsWith(w.auth.bindings.revoke(`user:${admin.id}`, global), 'GW_ERR_USER_LAST_ADMIN');
    assert.deepEqual((await w.auth.users.get('admin')).roles, [global]);
    // The same binding stored under the name as well: revoking one of the two keeps an admin.
    await w.auth.bindings.grant('user:admin', global, 't');
    assert.equal(await w.auth.bindings.revoke(`user:${admin.id}`, global), true);
    await rejectsWith(w.auth.bindings.revoke('user:admin', global), 'GW_ERR_USER_LAST_ADMIN');
    // With another enabled administrator it may go; other bindings are never held back.
    await w.auth.bindings.grant('user:pub', global, 't');
    assert.equal(await w.auth.bindings.revoke('user:admin', global), true);
    assert.equal(await w.auth.bindings.revoke('user:nobody', global), false);
  });

  void it('validates user input', async () => {
    await using w = await world();
    await rejectsWith(
      w.auth.users.create({ username: 'bob', password: 'short' }, 't'),
      'GW_ERR_USER_PASSWORD_WEAK',
    );
    await rejectsWith(
      w.auth.users.create({ username: 'pub', password: PASSWORD }, 't'),
      'GW_ERR_USER_EXISTS',
    );
    await rejectsWith(
      w.auth.users.create({ username: 'Bad Name', password: PASSWORD }, 't'),
      'GW_ERR_REQUEST_INVALID',
    );
    await w.auth.users.setPassword('pub', 'another long password');
    await rejectsWith(w.auth.login('pub', PASSWORD), 'GW_ERR_AUTH_INVALID_CREDENTIALS');
    w.clock.advance(1000);
    await w.auth.login('pub', 'another long password');
    const listed = await w.auth.users.list();
    assert.deepEqual(
      listed.map((u) => u.username),
      ['admin', 'pub'],
    );
    assert.equal(JSON.stringify(listed).includes('scrypt'), false, 'hashes never listed');
  });
});

const pg = requirePostgres();
void describe('auth service on PostgreSQL', pg.options, () => {
  void it('runs login, refresh, keys and users against the real server', async () => {
    await using schema = await isolatedPostgres(pg.need(), 'auth_service');
    await using w = await world(async () => createPostgresDatabase({ url: schema.url }));
    const login = await w.auth.login('pub', PASSWORD);
    const next = await w.auth.refresh(login.refreshToken);
    await rejectsWith(w.auth.refresh(login.refreshToken), 'GW_ERR_AUTH_TOKEN_REVOKED', /already used/);
    await rejectsWith(w.auth.refresh(next.refreshToken), 'GW_ERR_AUTH_TOKEN_REVOKED');
    const admin = await w.as('admin');
    const { secret } = await w.auth.keys.create(admin, {
      name: 'pg',
      bindings: [{ role: 'reader', namespace: 'kv1' }],
      expiresAt: w.clock.now() + DAY,
    });
    const principal = await w.auth.authenticate({ apiKey: secret });
    assert.equal(principal.expiresAt, w.clock.now() + DAY);
    const users = await w.auth.users.list();
    assert.deepEqual(
      users.map((u) => [u.username, u.createdAt]),
      [
        ['admin', new Date(w.clock.now()).toISOString()],
        ['pub', new Date(w.clock.now()).toISOString()],
      ],
    );
    await rejectsWith(
      w.auth.users.create({ username: 'pub', password: PASSWORD }, 't'),
      'GW_ERR_USER_EXISTS',
    );
  });
});
