import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { keyHint, signStream } from '../../../src/doors/artifacts/index.ts';
import { startDoor } from './harness.ts';

const ROLES = ['admin', 'publisher', 'consumer', 'auditor', 'outsider', 'operator', 'anonymous'] as const;
type Role = (typeof ROLES)[number];
const READERS: readonly Role[] = ['admin', 'publisher', 'consumer', 'auditor'];

async function* once(data: Buffer): AsyncGenerator<Buffer> {
  yield data;
}

void it('every role against every endpoint', async () => {
  await using h = await startDoor();
  const data = randomBytes(2000);
  const make = async (version: string) =>
    String(
      (
        await h.call('admin', 'POST', `/api/artifacts?repository=team&name=m&version=${version}`, data)
      ).json()['id'],
    );
  const approved = await make('approved');
  await h.door.scanQueue().drain();
  const blocked = await make('blocked');
  await h.door.scanQueue().drain();
  const override = JSON.stringify({ status: 'blocked', reason: 'manual block' });
  assert.equal(
    (
      await h.call('admin', 'POST', `/api/artifacts/${blocked}/verdict`, override, {
        'content-type': 'application/json',
      })
    ).status,
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
  const denials = await h.core.audit.query({ decision: 'deny', limit: 500 });
  assert.ok(denials.events.length >= 30, `RBAC denials are audited (${denials.events.length})`);
});
