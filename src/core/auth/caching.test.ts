import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '#core/config';
import { createLogger } from '#core/log';
import type { Principal } from '#core/rbac';
import { createSqliteDatabase } from '#core/storage';
import { authConfigSchema } from './config.ts';
import { createAuthService } from './service.ts';
import { createAdminAndPublisher, manualClock, rejectsWith, temporaryDir } from './test-support.ts';

const log = createLogger({ level: 'silent' });
const PASSWORD = 'correct horse battery staple';
const TTL = 5_000;
const certificate = {
  subject: 'CN=api',
  subjectAltNames: ['URI:spiffe://example.test/ns/orders/sa/api'],
  fingerprint256: 'AB:CD',
};
const CERT_SUBJECT = 'cert:svc:orders/api';
const READER = [{ role: 'reader', namespace: 'kv1' }] as const;

/** Two replicas (`a`, `b`) of the identity service on one database, with one manual clock. */
async function replicas(cacheTtl = '5s') {
  const dirA = await temporaryDir('cache-a');
  const dirB = await temporaryDir('cache-b');
  const db = await createSqliteDatabase({ file: ':memory:' });
  const clock = manualClock();
  // The certificate rule grants nothing itself, so every role below comes from stored bindings.
  const rule = '{ match: "SAN:URI:spiffe://example.test/ns/*/sa/*", principal: "svc:$1/$2", bindings: [] }';
  const text = `password: { scrypt: { ln: 10 } }\ncacheTtl: ${cacheTtl}\nmtls: { rules: [${rule}] }\n`;
  const config = (await loadConfig(authConfigSchema, { text })).config;
  const a = await createAuthService({ db, clock, log, dataDir: dirA.path, config });
  const b = await createAuthService({ db, clock, log, dataDir: dirB.path, config });
  await createAdminAndPublisher(a.users, PASSWORD);
  const login = async (username: string): Promise<Principal> =>
    a.authenticate({ bearer: (await a.login(username, PASSWORD)).accessToken });
  let dbClosed = false;
  return {
    a,
    b,
    clock,
    login,
    /** Takes the database away, so only what the replicas cached can still answer. */
    async closeDatabase() {
      dbClosed = true;
      await db.close();
    },
    async [Symbol.asyncDispose]() {
      a.close();
      b.close();
      if (!dbClosed) await db.close();
      await dirA[Symbol.asyncDispose]();
      await dirB[Symbol.asyncDispose]();
    },
  };
}

/** The secret with its last character changed (still well-formed). */
const tamper = (secret: string) => `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`;
const roles = (p: Principal) => p.bindings.map((x) => `${x.role}:${x.namespace}`).toSorted();

void describe('authentication caches', () => {
  void it('applies a binding change on the replica that made it at once', async () => {
    await using w = await replicas();
    assert.deepEqual(roles(await w.a.authenticate({ certificate })), []);
    await w.a.bindings.grant(CERT_SUBJECT, { role: 'reader', namespace: 'orders' }, 'test');
    assert.deepEqual(roles(await w.a.authenticate({ certificate })), ['reader:orders']);
    await w.a.bindings.replace(CERT_SUBJECT, [{ role: 'consumer', namespace: 'orders' }], 'test');
    assert.deepEqual(roles(await w.a.authenticate({ certificate })), ['consumer:orders']);
    assert.equal(await w.a.bindings.revoke(CERT_SUBJECT, { role: 'consumer', namespace: 'orders' }), true);
    assert.deepEqual(roles(await w.a.authenticate({ certificate })), []);
    // A configuration swap applies at once too.
    w.a.bindings.setConfigBindings([{ subject: CERT_SUBJECT, role: 'reader', namespace: 'cfg' }]);
    assert.deepEqual(roles(await w.a.authenticate({ certificate })), ['reader:cfg']);
    // A user's role change shows in the user record at once.
    await w.a.users.update('pub', { roles: [{ role: 'reader', namespace: 'kv1' }] }, 'user:admin');
    assert.deepEqual((await w.a.users.get('pub')).roles, [{ role: 'reader', namespace: 'kv1' }]);
  });

  void it('reuses bindings for at most cacheTtl on a replica that did not make the change', async () => {
    await using w = await replicas();
    assert.deepEqual(roles(await w.b.authenticate({ certificate })), []);
    await w.a.bindings.grant(CERT_SUBJECT, { role: 'admin', namespace: '*' }, 'test');
    assert.deepEqual(roles(await w.b.authenticate({ certificate })), [], 'b still answers from its cache');
    w.clock.advance(TTL);
    assert.deepEqual(roles(await w.b.authenticate({ certificate })), ['admin:*']);
    await w.a.bindings.revoke(CERT_SUBJECT, { role: 'admin', namespace: '*' });
    w.clock.advance(TTL);
    assert.deepEqual(
      roles(await w.b.authenticate({ certificate })),
      [],
      'a revoked role ends within the bound',
    );
  });

  void it('caches nothing with cacheTtl 0', async () => {
    await using w = await replicas('0s');
    await w.b.authenticate({ certificate });
    await w.a.bindings.grant(CERT_SUBJECT, { role: 'reader', namespace: 'orders' }, 'test');
    assert.deepEqual(roles(await w.b.authenticate({ certificate })), ['reader:orders']);
    const admin = await w.login('admin');
    const { key, secret } = await w.a.keys.create(admin, { name: 'k', bindings: [] });
    await w.b.authenticate({ apiKey: secret });
    await w.a.keys.revoke(admin, key.id);
    await rejectsWith(w.b.authenticate({ apiKey: secret }), 'GW_ERR_AUTH_KEY_INVALID');
  });

  void it('stops a revoked API key at once on the replica that revoked it, elsewhere within cacheTtl', async () => {
    await using w = await replicas();
    const admin = await w.login('admin');
    const { key, secret } = await w.a.keys.create(admin, { name: 'ci', bindings: READER });
    assert.equal((await w.a.authenticate({ apiKey: secret })).id, `key:${key.id}`);
    assert.equal((await w.b.authenticate({ apiKey: secret })).id, `key:${key.id}`);
    await w.a.keys.revoke(admin, key.id);
    await rejectsWith(w.a.authenticate({ apiKey: secret }), 'GW_ERR_AUTH_KEY_INVALID');
    await rejectsWith(w.a.authenticate({ bearer: secret }), 'GW_ERR_AUTH_KEY_INVALID');
    // The other replica read the key before the revocation; the documented bound applies.
    await w.b.authenticate({ apiKey: secret });
    w.clock.advance(TTL);
    await rejectsWith(w.b.authenticate({ apiKey: secret }), 'GW_ERR_AUTH_KEY_INVALID');
  });

  void it('checks secret, expiry and owner on every call, also when the key record is cached', async () => {
    await using w = await replicas();
    const admin = await w.login('admin');
    const pub = await w.login('pub');
    const { secret } = await w.a.keys.create(pub, {
      name: 'short',
      bindings: [{ role: 'publisher', namespace: 'team-a' }],
      expiresAt: w.clock.now() + 3_000,
    });
    await w.a.authenticate({ apiKey: secret });
    await rejectsWith(w.a.authenticate({ apiKey: tamper(secret) }), 'GW_ERR_AUTH_KEY_INVALID');
    await w.a.users.update('pub', { disabled: true }, 'user:admin');
    await rejectsWith(w.a.authenticate({ apiKey: secret }), 'GW_ERR_AUTH_KEY_INVALID', /disabled/);
    await w.a.users.update('pub', { disabled: false }, 'user:admin');
    await w.a.authenticate({ apiKey: secret });
    w.clock.advance(3_000);
    await rejectsWith(w.a.authenticate({ apiKey: secret }), 'GW_ERR_AUTH_KEY_INVALID', /expired/);
    const other = await w.a.keys.create(pub, { name: 'k2', bindings: [] });
    await w.a.authenticate({ apiKey: other.secret });
    await w.a.users.delete('pub');
    await rejectsWith(w.a.authenticate({ apiKey: other.secret }), 'GW_ERR_AUTH_KEY_INVALID');
    assert.ok(admin.id.startsWith('user:'));
  });

  void it('answers cached authentications without a database round trip', async () => {
    await using w = await replicas();
    const admin = await w.login('admin');
    const { key, secret } = await w.a.keys.create(admin, { name: 'ci', bindings: READER });
    await w.a.bindings.grant(CERT_SUBJECT, { role: 'reader', namespace: 'orders' }, 'test');
    await w.a.authenticate({ apiKey: secret });
    await w.a.authenticate({ certificate });
    await w.closeDatabase();
    assert.equal((await w.a.authenticate({ apiKey: secret })).id, `key:${key.id}`);
    assert.deepEqual(roles(await w.a.authenticate({ certificate })), ['reader:orders']);
    // A tampered secret is still refused from the cached record.
    await rejectsWith(w.a.authenticate({ apiKey: tamper(secret) }), 'GW_ERR_AUTH_KEY_INVALID');
    w.clock.advance(TTL);
    await assert.rejects(w.a.authenticate({ apiKey: secret }), 'an expired entry goes back to the database');
  });
});
