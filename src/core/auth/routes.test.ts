import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type AuditLog, createAuditLog } from '#core/audit';
import { createHealthRegistry } from '#core/app';
import { loadConfig, validateRaw } from '#core/config';
import { createHttpServer, httpConfigSchema, type MainHttpServer } from '#core/http';
import { createLogger } from '#core/log';
import { createMetrics } from '#core/metrics';
import { createLimiterFactory, createMemoryRateLimiter } from '#core/ratelimit';
import { authorize } from '#core/rbac';
import { createSqliteDatabase, type Database } from '#core/storage';
import { authConfigSchema } from './config.ts';
import { registerAuthRoutes } from './routes.ts';
import { type AuthService, createAuthService } from './service.ts';
import { manualClock, temporaryDir } from './test-support.ts';

const PASSWORD = 'correct horse battery staple';
const log = createLogger({ level: 'silent' });

void describe('identity HTTP API', () => {
  const clock = manualClock();
  let audit: AuditLog;
  let db: Database;
  let auth: AuthService;
  let server: MainHttpServer;
  let url: string;
  let dir: Awaited<ReturnType<typeof temporaryDir>>;

  before(async () => {
    dir = await temporaryDir('routes');
    db = await createSqliteDatabase({ file: ':memory:' });
    const metrics = createMetrics({ processMetrics: false });
    audit = await createAuditLog({ db, file: join(dir.path, 'audit.jsonl'), clock, log, metrics });
    const config = (await loadConfig(authConfigSchema, { text: 'password: { scrypt: { ln: 10 } }\n' }))
      .config;
    const login = createMemoryRateLimiter({ rate: 1 / 60, burst: 20, clock });
    auth = await createAuthService({ db, clock, log, dataDir: dir.path, config, limiters: { login } });
    await auth.ensureAdmin({ password: PASSWORD });
    server = await createHttpServer({
      config: validateRaw(httpConfigSchema, { listen: '127.0.0.1:0' }, 'test'),
      log,
      metrics,
      authenticator: auth,
      authorize,
      limiters: createLimiterFactory({ clock }),
      clock,
      health: createHealthRegistry({ clock }),
      audit,
    });
    registerAuthRoutes(server, auth, audit);
    url = await server.listen();
  });
  after(async () => {
    await server.close(AbortSignal.timeout(2000));
    auth.close();
    await db.close();
    await dir[Symbol.asyncDispose]();
  });

  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await response.text();
    return {
      status: response.status,
      headers: response.headers,
      json: (text === '' ? undefined : JSON.parse(text)) as Record<string, unknown>,
    };
  };
  const login = async (username: string, password = PASSWORD) => {
    const r = await call('POST', '/api/auth/login', { username, password });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    return r.json as { accessToken: string; refreshToken: string; expiresIn: number };
  };
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const audited = async (action: string, decision: string) =>
    (await audit.query({ action, decision: decision as 'allow' })).events.length > 0;

  void it('logs in and answers the documented token shape; serves the JWKS', async () => {
    const tokens = await login('admin');
    assert.equal(typeof tokens.accessToken, 'string');
    assert.equal(typeof tokens.refreshToken, 'string');
    assert.equal(tokens.expiresIn, 900);
    const users = await call('GET', '/api/users', undefined, bearer(tokens.accessToken));
    assert.equal(users.status, 200);
    assert.deepEqual(
      (users.json['users'] as { username: string }[]).map((u) => u.username),
      ['admin'],
    );
    const jwks = await call('GET', '/.well-known/jwks.json');
    assert.equal(jwks.status, 200);
    // The key that signed the access token is published, without its private part.
    const header = JSON.parse(
      Buffer.from(tokens.accessToken.split('.')[0] ?? '', 'base64url').toString(),
    ) as {
      kid: string;
    };
    const published = jwks.json['keys'] as Record<string, unknown>[];
    assert.deepEqual(
      published.map((k) => k['kid']),
      [header.kid],
    );
    assert.equal(
      published.some((k) => 'd' in k),
      false,
    );
    const me = await call('GET', '/api/auth/me', undefined, bearer(tokens.accessToken));
    assert.equal(me.json['name'], 'admin');
    assert.deepEqual(me.json['bindings'], [{ role: 'admin', namespace: '*' }]);
    assert.equal((await call('GET', '/api/auth/me')).status, 401);
    const roles = await call('GET', '/api/roles', undefined, bearer(tokens.accessToken));
    assert.equal((roles.json['roles'] as { role: string }[]).length, 6);
    assert.ok(await audited('auth.login', 'allow'));
  });

  void it('refuses wrong credentials and malformed bodies as problem+json', async () => {
    const wrong = await call('POST', '/api/auth/login', { username: 'admin', password: 'not the password' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    assert.equal(wrong.json['code'], 'GW_ERR_AUTH_INVALID_CREDENTIALS');
    assert.ok(await audited('auth.login', 'deny'));
    clock.advance(2000);
    for (const body of [
      { username: 'admin' },
      { username: 'admin', password: PASSWORD, extra: true },
      { username: { name: 'admin' }, password: PASSWORD },
      '{"username": "admin", "password":',
      [],
    ]) {
      const r = await call('POST', '/api/auth/login', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json['code'], 'GW_ERR_REQUEST_INVALID');
    }
  });

  void it('rotates refresh tokens, audits reuse and revokes the family; logout ends the session', async () => {
    const first = await login('admin');
    const second = await call('POST', '/api/auth/refresh', { refreshToken: first.refreshToken });
    assert.equal(second.status, 200);
    const replay = await call('POST', '/api/auth/refresh', { refreshToken: first.refreshToken });
    assert.equal(replay.status, 401);
    assert.equal(replay.json['code'], 'GW_ERR_AUTH_TOKEN_REVOKED');
    assert.ok(await audited('auth.refresh.reuse', 'deny'));
    const legit = await call('POST', '/api/auth/refresh', { refreshToken: second.json['refreshToken'] });
    assert.equal(legit.status, 401, 'the descendant is revoked too');
    const session = await login('admin');
    const out = await call('POST', '/api/auth/logout', { refreshToken: session.refreshToken });
    assert.equal(out.status, 204);
    const after = await call('GET', '/api/users', undefined, bearer(session.accessToken));
    assert.equal(after.status, 401);
    assert.equal(after.json['code'], 'GW_ERR_AUTH_TOKEN_REVOKED');
    // Logout with only the access token (no body) ends that session too.
    const other = await login('admin');
    const byBearer = await call('POST', '/api/auth/logout', undefined, bearer(other.accessToken));
    assert.equal(byBearer.status, 204, JSON.stringify(byBearer.json));
    const refreshAfter = await call('POST', '/api/auth/refresh', { refreshToken: other.refreshToken });
    assert.equal(refreshAfter.json['code'], 'GW_ERR_AUTH_TOKEN_REVOKED');
    const anonymous = await call('POST', '/api/auth/logout');
    assert.equal(anonymous.json['code'], 'GW_ERR_AUTH_REQUIRED');
  });

  void it('lets only admins manage users and bindings', async () => {
    const admin = await login('admin');
    const created = await call(
      'POST',
      '/api/users',
      { username: 'pub', password: PASSWORD, roles: [{ role: 'publisher', namespace: 'team-a' }] },
      bearer(admin.accessToken),
    );
    assert.equal(created.status, 201, JSON.stringify(created.json));
    assert.equal(JSON.stringify(created.json).includes('scrypt'), false);
    const pub = await login('pub');
    for (const [method, path, body] of [
      [
        'POST',
        '/api/users',
        { username: 'evil', password: PASSWORD, roles: [{ role: 'admin', namespace: '*' }] },
      ],
      ['PATCH', '/api/users/pub', { roles: [{ role: 'admin', namespace: '*' }] }],
      ['POST', '/api/role-bindings', { subject: 'user:pub', role: 'admin', namespace: '*' }],
      ['DELETE', '/api/users/admin', undefined],
      ['PUT', '/api/users/admin/password', { password: 'hijacked password 1' }],
    ] as const) {
      const r = await call(method, path, body, bearer(pub.accessToken));
      assert.equal(r.status, 403, `${method} ${path}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json['code'], 'GW_ERR_RBAC_DENIED');
    }
    const anonymous = await call('GET', '/api/users');
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.json['code'], 'GW_ERR_AUTH_REQUIRED');
    const patched = await call(
      'PATCH',
      '/api/users/pub',
      { disabled: false, roles: [{ role: 'consumer', namespace: 'team-a' }] },
      bearer(admin.accessToken),
    );
    assert.equal(patched.status, 200);
    const granted = await call(
      'POST',
      '/api/role-bindings',
      { subject: 'user:pub', role: 'reader', namespace: 'kv1' },
      bearer(admin.accessToken),
    );
    assert.equal(granted.status, 201);
    const listed = await call(
      'GET',
      '/api/role-bindings?subject=user:pub',
      undefined,
      bearer(admin.accessToken),
    );
    assert.equal((listed.json['bindings'] as unknown[]).length, 1);
    // Changing roles ended pub's sessions (its tokens carried the old roles): it logs in again.
    const stale = await call('GET', '/api/keys', undefined, bearer(pub.accessToken));
    assert.equal(stale.json['code'], 'GW_ERR_AUTH_TOKEN_REVOKED');
    const again = await login('pub');
    const own = await call(
      'PUT',
      '/api/users/pub/password',
      { password: 'a new long password', currentPassword: PASSWORD },
      bearer(again.accessToken),
    );
    assert.equal(own.status, 204, JSON.stringify(own.json));
    const removed = await call('DELETE', '/api/users/pub', undefined, bearer(admin.accessToken));
    assert.equal(removed.status, 204);
  });

  void it('manages API keys: shown once, scoped, revocable', async () => {
    const admin = await login('admin');
    await call(
      'POST',
      '/api/users',
      { username: 'ops', password: PASSWORD, roles: [{ role: 'operator', namespace: 'kv1' }] },
      bearer(admin.accessToken),
    );
    const ops = await login('ops');
    const wider = await call(
      'POST',
      '/api/keys',
      { name: 'x', bindings: [{ role: 'operator', namespace: '*' }] },
      bearer(ops.accessToken),
    );
    assert.equal(wider.status, 403);
    const made = await call(
      'POST',
      '/api/keys',
      { name: 'deploy', bindings: [{ role: 'operator', namespace: 'kv1' }] },
      bearer(ops.accessToken),
    );
    assert.equal(made.status, 201, JSON.stringify(made.json));
    const secret = made.json['secret'] as string;
    const listed = await call('GET', '/api/keys', undefined, { 'x-api-key': secret });
    assert.equal(listed.status, 200);
    assert.equal(JSON.stringify(listed.json).includes(secret), false, 'the secret is shown only once');
    const badCidr = await call(
      'POST',
      '/api/keys',
      { name: 'y', bindings: [{ role: 'operator', namespace: 'kv1' }], allowedCidrs: ['nope'] },
      bearer(ops.accessToken),
    );
    assert.equal(badCidr.status, 400);
    // Empty is refused: the HTTP check read it as "from nowhere", the authenticator as "from anywhere".
    const noCidr = await call(
      'POST',
      '/api/keys',
      { name: 'y', bindings: [{ role: 'operator', namespace: 'kv1' }], allowedCidrs: [] },
      bearer(ops.accessToken),
    );
    assert.equal(noCidr.status, 400, JSON.stringify(noCidr.json));
    assert.equal(noCidr.json['code'], 'GW_ERR_REQUEST_INVALID');
    const expiry = async (expiresAt: string) =>
      call(
        'POST',
        '/api/keys',
        { name: 'e', bindings: [{ role: 'operator', namespace: 'kv1' }], expiresAt },
        bearer(ops.accessToken),
      );
    const future = new Date(clock.now() + 86_400_000).toISOString();
    const expiring = await expiry(future);
    assert.equal(expiring.status, 201, JSON.stringify(expiring.json));
    assert.equal(expiring.json['expiresAt'], future);
    assert.equal((await expiry('tomorrow')).status, 400);
    assert.equal((await expiry(new Date(clock.now() - 1000).toISOString())).status, 400);
    const revoked = await call(
      'DELETE',
      `/api/keys/${made.json['id'] as string}`,
      undefined,
      bearer(ops.accessToken),
    );
    assert.equal(revoked.status, 204);
    const after = await call('GET', '/api/keys', undefined, { 'x-api-key': secret });
    assert.equal(after.status, 401);
    assert.equal(after.json['code'], 'GW_ERR_AUTH_KEY_INVALID');
  });

  void it('bounds a key created with an API key by that key: no later expiry, no wider address allow-list', async () => {
    const admin = await login('admin');
    const bindings = [{ role: 'operator', namespace: 'kv2' }];
    const made = await call(
      'POST',
      '/api/users',
      { username: 'ci', password: PASSWORD, roles: bindings },
      bearer(admin.accessToken),
    );
    assert.equal(made.status, 201, JSON.stringify(made.json));
    const ci = await login('ci');
    const until = new Date(clock.now() + 3_600_000).toISOString();
    const parent = await call(
      'POST',
      '/api/keys',
      { name: 'parent', bindings, expiresAt: until, allowedCidrs: ['127.0.0.0/8'] },
      bearer(ci.accessToken),
    );
    assert.equal(parent.status, 201, JSON.stringify(parent.json));
    const withParent = (body: Record<string, unknown>) =>
      call(
        'POST',
        '/api/keys',
        { name: 'child', bindings, ...body },
        { 'x-api-key': parent.json['secret'] as string },
      );
    const child = await withParent({});
    assert.equal(child.status, 201, JSON.stringify(child.json));
    assert.equal(child.json['expiresAt'], until);
    assert.deepEqual(child.json['allowedCidrs'], ['127.0.0.0/8']);
    const narrower = await withParent({
      expiresAt: new Date(clock.now() + 60_000).toISOString(),
      allowedCidrs: ['127.0.0.1'],
    });
    assert.equal(narrower.status, 201, JSON.stringify(narrower.json));
    for (const body of [
      { expiresAt: new Date(clock.now() + 7_200_000).toISOString() },
      { allowedCidrs: ['0.0.0.0/0'] },
      { allowedCidrs: ['127.0.0.1/32', '10.0.0.0/8'] },
      { allowedCidrs: ['::/0'] },
    ]) {
      const refused = await withParent(body);
      assert.equal(refused.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(refused.json)}`);
      assert.equal(refused.json['code'], 'GW_ERR_REQUEST_INVALID');
    }
    // A user's own keys are not bounded by anything but the user's roles.
    const free = await call('POST', '/api/keys', { name: 'free', bindings }, bearer(ci.accessToken));
    assert.equal(free.status, 201);
    assert.equal(free.json['expiresAt'], undefined);
  });

  void it('does not tell a non-admin which accounts exist through the password route, and audits a wrong current password', async () => {
    const admin = await login('admin');
    const created = await call(
      'POST',
      '/api/users',
      { username: 'carol', password: PASSWORD, roles: [{ role: 'reader', namespace: 'team-a' }] },
      bearer(admin.accessToken),
    );
    assert.equal(created.status, 201, JSON.stringify(created.json));
    const carol = await login('carol');
    for (const target of ['admin', 'no-such-user']) {
      for (const body of [
        { password: 'hijacked password 1' },
        { password: 'hijacked password 1', currentPassword: PASSWORD },
      ]) {
        const r = await call('PUT', `/api/users/${target}/password`, body, bearer(carol.accessToken));
        assert.equal(r.status, 403, `${target}: ${JSON.stringify(r.json)}`);
        assert.equal(r.json['code'], 'GW_ERR_RBAC_DENIED');
      }
    }
    const wrong = await call(
      'PUT',
      '/api/users/carol/password',
      { password: 'a new long password', currentPassword: 'not the password at all' },
      bearer(carol.accessToken),
    );
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json['code'], 'GW_ERR_AUTH_INVALID_CREDENTIALS');
    const denied = (await audit.query({ action: 'user.password', decision: 'deny' })).events;
    assert.equal(denied.length, 1, JSON.stringify(denied));
    assert.equal(denied[0]?.resource, 'user:carol');
    assert.equal(denied[0]?.reason, 'GW_ERR_AUTH_INVALID_CREDENTIALS');
    assert.equal(
      (await call('DELETE', '/api/users/carol', undefined, bearer(admin.accessToken))).status,
      204,
    );
  });

  void it('refuses a login whose user name is not a string instead of converting it', async () => {
    for (const username of [['admin'], 12_345]) {
      const r = await call('POST', '/api/auth/login', { username, password: PASSWORD });
      assert.equal(r.status, 400, JSON.stringify(r.json));
      assert.equal(r.json['code'], 'GW_ERR_REQUEST_INVALID');
      assert.deepEqual(r.json['errors'], [{ path: 'body/username', message: 'must be string' }]);
    }
    const tokens = await login('admin');
    const r = await call(
      'POST',
      '/api/users',
      { username: 'carol', password: PASSWORD, disabled: 'false' },
      bearer(tokens.accessToken),
    );
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.deepEqual(r.json['errors'], [{ path: 'body/disabled', message: 'must be boolean' }]);
  });

  void it('refuses user names that look like user ids and API key names with unprintable characters', async () => {
    const admin = await login('admin');
    const named = await call(
      'POST',
      '/api/users',
      { username: 'u_0123456789abcdef01', password: PASSWORD },
      bearer(admin.accessToken),
    );
    assert.equal(named.status, 400, JSON.stringify(named.json));
    assert.equal(named.json['code'], 'GW_ERR_REQUEST_INVALID');
    assert.match(String(named.json['detail']), /starting with "u_" are reserved for user ids/);
    assert.equal((named.json['errors'] as { field: string }[])[0]?.field, 'username');
    const key = (name: string) =>
      call(
        'POST',
        '/api/keys',
        { name, bindings: [{ role: 'reader', namespace: '*' }] },
        bearer(admin.accessToken),
      );
    for (const name of [
      'ci\u001b[31mred',
      'line\nbreak',
      'tab\there',
      'del\u007f',
      'csi\u009b',
      'rtl\u202eexe.txt',
      'zero\u200bwidth',
      'sep\u2028',
    ]) {
      const r = await key(name);
      assert.equal(r.status, 400, JSON.stringify(name));
      assert.equal(r.json['code'], 'GW_ERR_REQUEST_INVALID');
      assert.equal((r.json['errors'] as { field: string }[])[0]?.field, 'name', JSON.stringify(name));
      assert.ok(!String(r.json['detail']).includes(name));
    }
    const long = await key('k'.repeat(129));
    assert.equal(long.status, 400);
    assert.equal((long.json['errors'] as { path: string }[])[0]?.path, 'body/name');
    for (const name of ['deploy bot (prod) ✓', 'Überwachung-π', 'k'.repeat(128)]) {
      const r = await key(name);
      assert.equal(r.status, 201, JSON.stringify(r.json));
      assert.equal(r.json['name'], name);
    }
  });

  void it('rate-limits logins per client address', async () => {
    let limited: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i < 30 && limited === undefined; i++) {
      const r = await call('POST', '/api/auth/login', { username: 'nobody', password: 'whatever-password' });
      if (r.status === 429) limited = r;
      else assert.equal(r.status, 401);
    }
    assert.ok(limited !== undefined, 'the limiter answered 429 within the burst');
    assert.equal(limited.json['code'], 'GW_ERR_RATE_LIMITED');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
  });

  const attempt = async (remoteAddress: string, username: string, password: string) => {
    const r = await server.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { username, password },
      remoteAddress,
    });
    return { status: r.statusCode, code: r.json<{ code?: string }>().code };
  };
  void it('rate-limits logins per IPv6 /64, so rotating addresses within it does not help', async () => {
    let limitedAt: number | undefined;
    for (let i = 1; i <= 30 && limitedAt === undefined; i++) {
      const r = await attempt(`2001:db8:5:6::${i.toString(16)}`, 'nobody', 'whatever-password');
      if (r.status === 429) limitedAt = i;
      else assert.equal(r.status, 401);
    }
    assert.ok(limitedAt !== undefined, 'the limiter answered 429 within the burst');
    assert.equal((await attempt('2001:db8:5:6:ffff::1', 'nobody', 'whatever-password')).status, 429);
    // Another /64 has its own budget.
    assert.equal((await attempt('2001:db8:5:7::1', 'nobody', 'whatever-password')).status, 401);
  });
  void it('locks a login only for the client address that failed', async () => {
    await auth.users.create({ username: 'bob', password: PASSWORD }, 'test');
    for (const step of [0, 1000, 2000, 4000, 8000]) {
      clock.advance(step);
      assert.equal((await attempt('203.0.113.50', 'bob', 'wrong password!!')).status, 401);
    }
    assert.deepEqual(await attempt('203.0.113.50', 'bob', PASSWORD), {
      status: 401,
      code: 'GW_ERR_AUTH_LOCKED',
    });
    assert.equal((await attempt('198.51.100.50', 'bob', PASSWORD)).status, 200);
    // An admin unlocks through the API (audited); nobody else may.
    // Logged in from an address of their own: the per-address login limit of 127.0.0.1 is spent.
    const tokenOf = async (username: string) =>
      (
        await server.app.inject({
          method: 'POST',
          url: '/api/auth/login',
          payload: { username, password: PASSWORD },
          remoteAddress: '192.0.2.77',
        })
      ).json<{ accessToken: string }>().accessToken;
    const admin = bearer(await tokenOf('admin'));
    const bob = bearer(await tokenOf('bob'));
    assert.equal((await call('POST', '/api/users/bob/unlock', undefined, bob)).status, 403);
    assert.equal((await call('POST', '/api/users/bob/unlock')).status, 401);
    assert.equal((await call('POST', '/api/users/nobody/unlock', undefined, admin)).status, 404);
    const unlocked = await call('POST', '/api/users/bob/unlock', undefined, admin);
    assert.equal(unlocked.status, 200, JSON.stringify(unlocked.json));
    assert.equal(unlocked.json['addresses'], 1);
    assert.ok(await audited('user.unlock', 'allow'));
    assert.equal((await attempt('203.0.113.50', 'bob', PASSWORD)).status, 200);
  });
});
