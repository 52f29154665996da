import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { ConfigSection } from '#core/config';
import { loadConfig } from '#core/config';
import { createLogger } from '#core/log';
import { authorize, type Principal, type RbacConfig, type SubjectBinding } from '#core/rbac';
import { createSqliteDatabase } from '#core/storage';
import { authConfigSchema } from './config.ts';
import { createAuthService } from './service.ts';
import { manualClock, rejectsWith, temporaryDir } from './test-support.ts';

const PASSWORD = 'correct horse battery staple';
const ADMIN = { role: 'admin', namespace: '*' } as const;
const certificate = {
  subject: 'CN=api',
  subjectAltNames: ['URI:spiffe://example.test/ns/orders/sa/api'],
  fingerprint256: 'AB:CD',
};

/** The `rbac` section as a reload swaps it: listeners get (next, previous), as from the store. */
function reloadableRbac(initial: readonly SubjectBinding[]) {
  let current: RbacConfig = { bindings: initial };
  const events = new EventEmitter<{ reload: [next: RbacConfig, previous: RbacConfig] }>();
  const section: ConfigSection<RbacConfig> = {
    current: () => current,
    subscribe: (listener) => {
      events.on('reload', listener);
      return () => events.off('reload', listener);
    },
  };
  const reload = (bindings: readonly SubjectBinding[]) => {
    const previous = current;
    current = { bindings };
    events.emit('reload', current, previous);
  };
  return { section, reload };
}

/** An auth service whose `rbac.bindings` the test reloads; `lines` holds what it logged. */
async function world(initial: readonly SubjectBinding[] = []) {
  const dir = await temporaryDir('config-bindings');
  const db = await createSqliteDatabase({ file: ':memory:' });
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const rule = '{ match: "SAN:URI:spiffe://example.test/ns/*/sa/*", principal: "svc:$1/$2", bindings: [] }';
  // A long cache TTL: only the invalidation by the reload can make a change visible.
  const text = `password: { scrypt: { ln: 10 } }\ncacheTtl: 60s\nmtls: { rules: [${rule}] }\n`;
  const config = (await loadConfig(authConfigSchema, { text })).config;
  const rbac = reloadableRbac(initial);
  const auth = await createAuthService({
    db,
    clock: manualClock(),
    log: createLogger({ level: 'info', stream }),
    dataDir: dir.path,
    config,
    rbac: rbac.section,
  });
  await auth.users.create({ username: 'root', password: PASSWORD, roles: [ADMIN] }, 't');
  const alice = await auth.users.create({ username: 'alice', password: PASSWORD }, 't');
  return {
    auth,
    alice,
    lines,
    reload: rbac.reload,
    async [Symbol.asyncDispose]() {
      auth.close();
      await db.close();
      await dir[Symbol.asyncDispose]();
    },
  };
}

const roles = (p: Principal) => p.bindings.map((b) => `${b.role}:${b.namespace}`).toSorted();
const canManageUsers = (p: Principal) => authorize(p, 'users:write', { type: 'user' }).allowed;

void describe('configuration role bindings and live credentials', () => {
  for (const form of ['name', 'id'] as const) {
    void it(`takes a removed "user:<${form}>" binding away from a live session and its refresh token at once`, async () => {
      await using w = await world();
      const subject = form === 'name' ? 'user:alice' : `user:${w.alice.id}`;
      w.reload([{ subject, ...ADMIN }]);
      const session = await w.auth.login('alice', PASSWORD);
      const before = await w.auth.authenticate({ bearer: session.accessToken });
      assert.equal(canManageUsers(before), true, 'admin through the configuration binding');

      w.reload([]);
      const after = await w.auth.authenticate({ bearer: session.accessToken });
      assert.deepEqual(roles(after), [], 'the token issued with admin carries nothing any more');
      assert.equal(canManageUsers(after), false);
      const refreshed = await w.auth.refresh(session.refreshToken);
      assert.deepEqual(roles(await w.auth.authenticate({ bearer: refreshed.accessToken })), []);
      assert.deepEqual(roles(await w.auth.authenticate({ bearer: session.accessToken })), []);
    });
  }

  void it('gives an added binding to a live session without a new login, and keeps stored roles', async () => {
    await using w = await world();
    await w.auth.users.update('alice', { roles: [{ role: 'reader', namespace: 'kv1' }] }, 'user:root');
    const session = await w.auth.login('alice', PASSWORD);
    assert.deepEqual(roles(await w.auth.authenticate({ bearer: session.accessToken })), ['reader:kv1']);
    w.reload([{ subject: 'user:alice', role: 'operator', namespace: 'orders' }]);
    assert.deepEqual(roles(await w.auth.authenticate({ bearer: session.accessToken })), [
      'operator:orders',
      'reader:kv1',
    ]);
    w.reload([]);
    assert.deepEqual(roles(await w.auth.authenticate({ bearer: session.accessToken })), ['reader:kv1']);
  });

  void it('takes a role removed through the binding API away from a live session at once', async () => {
    await using w = await world();
    await w.auth.bindings.grant('user:alice', ADMIN, 'user:root');
    const session = await w.auth.login('alice', PASSWORD);
    assert.equal(canManageUsers(await w.auth.authenticate({ bearer: session.accessToken })), true);
    assert.equal(await w.auth.bindings.revoke('user:alice', ADMIN), true);
    assert.equal(canManageUsers(await w.auth.authenticate({ bearer: session.accessToken })), false);
  });

  void it('applies a "key:<id>" binding to the API key, and its removal at once', async () => {
    await using w = await world();
    const root = await w.auth.authenticate({ bearer: (await w.auth.login('root', PASSWORD)).accessToken });
    const { key, secret } = await w.auth.keys.create(root, {
      name: 'ci',
      bindings: [{ role: 'reader', namespace: 'kv1' }],
    });
    assert.deepEqual(roles(await w.auth.authenticate({ apiKey: secret })), ['reader:kv1']);
    w.reload([{ subject: `key:${key.id}`, ...ADMIN }]);
    const granted = await w.auth.authenticate({ apiKey: secret });
    assert.equal(canManageUsers(granted), true);
    assert.deepEqual(roles(granted), ['admin:*', 'reader:kv1']);
    w.reload([]);
    const removed = await w.auth.authenticate({ bearer: secret });
    assert.equal(canManageUsers(removed), false);
    assert.deepEqual(roles(removed), ['reader:kv1'], 'the key keeps the roles it was created with');
  });

  void it('applies a "cert:<principal>" binding and its removal at once', async () => {
    await using w = await world([{ subject: 'cert:svc:orders/api', role: 'reader', namespace: 'orders' }]);
    assert.deepEqual(roles(await w.auth.authenticate({ certificate })), ['reader:orders']);
    w.reload([]);
    assert.deepEqual(roles(await w.auth.authenticate({ certificate })), []);
  });

  void it('logs the subjects whose configuration bindings a reload changed', async () => {
    await using w = await world([
      { subject: 'user:alice', ...ADMIN },
      { subject: 'user:bob', role: 'reader', namespace: 'kv1' },
    ]);
    w.reload([
      { subject: 'user:bob', role: 'reader', namespace: 'kv1' },
      { subject: 'user:carol', role: 'reader', namespace: 'kv1' },
    ]);
    const line = w.lines.find((l) => l.includes('Configuration role bindings changed'));
    assert.ok(line !== undefined, w.lines.join(''));
    assert.deepEqual((JSON.parse(line) as { subjects: string[] }).subjects, ['user:alice', 'user:carol']);
  });

  void it('still ends a session that was logged out, whatever its bindings', async () => {
    await using w = await world([{ subject: 'user:alice', ...ADMIN }]);
    const session = await w.auth.login('alice', PASSWORD);
    await w.auth.logout(session.refreshToken);
    await rejectsWith(w.auth.authenticate({ bearer: session.accessToken }), 'GW_ERR_AUTH_TOKEN_REVOKED');
  });
});
