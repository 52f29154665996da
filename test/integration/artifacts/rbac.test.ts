import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { startGatewayProcess } from '#testing/start-gateway';
import { keyHint, signStream } from '../../../src/doors/artifacts/index.ts';
import { startDoor } from './harness.ts';

const ROLES = ['admin', 'publisher', 'consumer', 'auditor', 'outsider', 'operator', 'anonymous'] as const;
type Role = (typeof ROLES)[number];
const READERS: readonly Role[] = ['admin', 'publisher', 'consumer', 'auditor'];

async function* once(data: Buffer): AsyncGenerator<Buffer> {
  yield data;
}

/** A door under test, reached as one of ROLES. */
interface Subject {
  call(
    role: Role,
    method: string,
    path: string,
    body?: string | Buffer,
    headers?: Record<string, string>,
  ): Promise<{ status: number; json: () => Record<string, unknown> }>;
  /** Resolves once the artifact's first scan has finished. */
  scanned(id: string): Promise<void>;
  /** How many RBAC and download denials the audit log holds. */
  denials(): Promise<number>;
}

const JSON_BODY = { 'content-type': 'application/json' };

/** Runs every role against every endpoint of the door and checks the status each gets. */
async function matrix(h: Subject): Promise<void> {
  const data = randomBytes(2000);
  const make = async (version: string) => {
    const made = await h.call(
      'admin',
      'POST',
      `/api/artifacts?repository=team&name=m&version=${version}`,
      data,
    );
    assert.equal(made.status, 201);
    const id = String(made.json()['id']);
    await h.scanned(id);
    return id;
  };
  const approved = await make('approved');
  const blocked = await make('blocked');
  const override = JSON.stringify({ status: 'blocked', reason: 'manual block' });
  assert.equal(
    (await h.call('admin', 'POST', `/api/artifacts/${blocked}/verdict`, override, JSON_BODY)).status,
    200,
  );
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const bundle = JSON.stringify(
    await signStream(once(data), key.privateKey, { hint: keyHint(key.publicKey) }),
  );
  assert.equal(createHash('sha256').update(data).digest('hex').length, 64);

  let version = 0;
  const cases: {
    name: string;
    allowed: readonly Role[];
    run: (role: Role) => Promise<{ status: number }>;
    ok: number;
  }[] = [
    {
      name: 'list',
      allowed: ['admin', 'publisher', 'consumer', 'auditor', 'outsider', 'operator'],
      ok: 200,
      run: (r) => h.call(r, 'GET', '/api/artifacts'),
    },
    {
      name: 'upload',
      allowed: ['admin', 'publisher'],
      ok: 201,
      run: (r) =>
        h.call(r, 'POST', `/api/artifacts?repository=team&name=u&version=${(version += 1)}`, randomBytes(10)),
    },
    { name: 'read', allowed: READERS, ok: 200, run: (r) => h.call(r, 'GET', `/api/artifacts/${approved}`) },
    {
      name: 'download approved',
      allowed: READERS,
      ok: 200,
      run: (r) => h.call(r, 'GET', `/api/artifacts/${approved}/download`),
    },
    {
      name: 'download blocked',
      allowed: ['admin'],
      ok: 200,
      run: (r) => h.call(r, 'GET', `/api/artifacts/${blocked}/download`),
    },
    {
      name: 'download ticket',
      allowed: READERS,
      ok: 201,
      run: (r) => h.call(r, 'POST', `/api/artifacts/${approved}/download-tickets`),
    },
    {
      name: 'download ticket, blocked',
      allowed: ['admin'],
      ok: 201,
      run: (r) => h.call(r, 'POST', `/api/artifacts/${blocked}/download-tickets`),
    },
    {
      name: 'scan results',
      allowed: READERS,
      ok: 200,
      run: (r) => h.call(r, 'GET', `/api/artifacts/${approved}/scan-results`),
    },
    {
      name: 'rescan',
      allowed: ['admin'],
      ok: 202,
      run: (r) => h.call(r, 'POST', `/api/artifacts/${approved}/scan`),
    },
    {
      name: 'override',
      allowed: ['admin'],
      ok: 200,
      run: (r) =>
        h.call(
          r,
          'POST',
          `/api/artifacts/${approved}/verdict`,
          JSON.stringify({ status: 'approved', reason: 'reviewed' }),
          { 'content-type': 'application/json' },
        ),
    },
    {
      name: 'signatures',
      allowed: READERS,
      ok: 200,
      run: (r) => h.call(r, 'GET', `/api/artifacts/${approved}/signatures`),
    },
    {
      name: 'sign',
      allowed: ['admin', 'publisher'],
      ok: 201,
      run: (r) =>
        h.call(r, 'POST', `/api/artifacts/${approved}/signatures`, bundle, {
          'content-type': 'application/json',
        }),
    },
    {
      name: 'verification',
      allowed: READERS,
      ok: 200,
      run: (r) => h.call(r, 'GET', `/api/artifacts/${approved}/verification`),
    },
    {
      name: 'rotate keys',
      allowed: ['admin'],
      ok: 200,
      run: (r) => h.call(r, 'POST', '/api/artifacts/-/rotate-keys'),
    },
  ];
  for (const c of cases) {
    for (const role of ROLES) {
      const res = await c.run(role);
      const expected = c.allowed.includes(role) ? c.ok : role === 'anonymous' ? 401 : 403;
      assert.equal(res.status, expected, `${c.name} as ${role}`);
    }
  }
  // Delete last: only an admin, and afterwards the artifact is gone for everyone.
  for (const role of ROLES.filter((r) => r !== 'admin')) {
    assert.equal(
      (await h.call(role, 'DELETE', `/api/artifacts/${blocked}`)).status,
      role === 'anonymous' ? 401 : 403,
      `delete as ${role}`,
    );
  }
  assert.equal((await h.call('admin', 'DELETE', `/api/artifacts/${blocked}`)).status, 204);
  assert.equal((await h.call('admin', 'GET', `/api/artifacts/${blocked}`)).status, 404);
  // A missing id authorizes against "*": repository-bound roles cannot tell absent from forbidden.
  assert.equal((await h.call('consumer', 'GET', `/api/artifacts/${blocked}`)).status, 403);
  const denials = await h.denials();
  assert.ok(denials >= 30, `RBAC denials are audited (${denials})`);
}

void it('every role against every endpoint (door on a test core)', async () => {
  await using h = await startDoor();
  await matrix({
    call: (role, method, path, body, headers) => h.call(role, method, path, body, headers),
    scanned: async () => {
      await h.door.scanQueue().drain();
    },
    denials: async () => (await h.core.audit.query({ decision: 'deny', limit: 500 })).events.length,
  });
});

const PASSWORD = 'rbac-matrix-password';
const BINDINGS: Readonly<Record<Exclude<Role, 'anonymous'>, { role: string; namespace: string }>> = {
  admin: { role: 'admin', namespace: '*' },
  publisher: { role: 'publisher', namespace: 'team' },
  consumer: { role: 'consumer', namespace: 'team' },
  auditor: { role: 'auditor', namespace: '*' },
  outsider: { role: 'publisher', namespace: 'other' },
  operator: { role: 'operator', namespace: '*' },
};

void it('every role against every endpoint through the real core auth (users, passwords, JWTs)', async () => {
  await using gateway = await startGatewayProcess({
    env: { GATEHOUSE_ADMIN_PASSWORD: PASSWORD, GATEHOUSE_ARTIFACTS_SCAN_POLL_INTERVAL: '200ms' },
  });
  const url = gateway.url;
  const send = async (
    token: string | undefined,
    method: string,
    path: string,
    body?: string | Buffer,
    headers = {},
  ) => {
    const response = await fetch(url + path, {
      method,
      headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...headers },
      ...(body === undefined ? {} : { body }),
    });
    const text = await response.text();
    return { status: response.status, json: () => JSON.parse(text) as Record<string, unknown> };
  };
  const login = async (username: string) => {
    const answer = await send(
      undefined,
      'POST',
      '/api/auth/login',
      JSON.stringify({ username, password: PASSWORD }),
      JSON_BODY,
    );
    assert.equal(answer.status, 200);
    return String(answer.json()['accessToken']);
  };
  const tokens = new Map<Role, string>([['admin', await login('admin')]]);
  for (const [role, binding] of Object.entries(BINDINGS)) {
    if (role === 'admin') continue;
    const created = await send(
      tokens.get('admin'),
      'POST',
      '/api/users',
      JSON.stringify({ username: role, password: PASSWORD, roles: [binding] }),
      JSON_BODY,
    );
    assert.equal(created.status, 201);
    tokens.set(role as Role, await login(role));
  }
  await matrix({
    call: (role, method, path, body, headers) => send(tokens.get(role), method, path, body, headers),
    scanned: async (id) => {
      const deadline = Date.now() + 60_000;
      while (
        (await send(tokens.get('admin'), 'GET', `/api/artifacts/${id}`)).json()['scanState'] !== 'done'
      ) {
        assert.ok(Date.now() < deadline, `artifact ${id} was never scanned`);
        await delay(100);
      }
    },
    denials: async () => {
      const page = await send(tokens.get('auditor'), 'GET', '/api/audit-logs?decision=deny&limit=500');
      return (page.json()['events'] as unknown[]).length;
    },
  });
});
