import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually } from '#testing/eventually';
import { type GatewayProcess, startGatewayProcess } from '#testing/start-gateway';

const PASSWORD = 'reload-admin-password-1';
const ALICE_PASSWORD = 'alice-password-123456789';
let home: string;
let file: string;
let gw: GatewayProcess;
let adminToken: string;
let aliceId: string;

/** A document whose only `rbac.bindings` entry makes `subject` a global admin (none without). */
const config = (subject?: string) =>
  subject === undefined
    ? 'rbac:\n  bindings: []\n'
    : `rbac:\n  bindings:\n    - { subject: "${subject}", role: admin, namespace: "*" }\n`;

async function call(
  method: string,
  path: string,
  token?: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${gw.url}${path}`, {
    method,
    headers: {
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return {
    status: response.status,
    body: (await response.json().catch(() => ({}))) as Record<string, unknown>,
  };
}

const login = async (username: string, password: string) =>
  (await call('POST', '/api/auth/login', undefined, { username, password })).body as {
    accessToken: string;
    refreshToken: string;
  };

/** The status of an admin-only route for `token`. */
const listUsers = async (token: string) => (await call('GET', '/api/users', token)).status;

/** Waits (bounded) until `check` holds, for reloads triggered by signals; false if it never did. */

before(async () => {
  home = mkdtempSync(join(tmpdir(), 'gatehouse-reload-bindings-'));
  file = join(home, 'gatehouse.yaml');
  writeFileSync(file, config('user:alice'));
  gw = await startGatewayProcess({
    home,
    args: ['--config', file],
    env: { GATEHOUSE_ADMIN_PASSWORD: PASSWORD, GATEHOUSE_LOG_LEVEL: 'info' },
  });
  adminToken = (await login('admin', PASSWORD)).accessToken;
  const created = await call('POST', '/api/users', adminToken, {
    username: 'alice',
    password: ALICE_PASSWORD,
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  aliceId = created.body['id'] as string;
});
after(async () => {
  await gw[Symbol.asyncDispose]();
  rmSync(home, { recursive: true, force: true });
});

describe('a reload that removes a configuration binding', () => {
  it('takes the admin role away from the live session at once, and its refresh token cannot bring it back', async () => {
    const alice = await login('alice', ALICE_PASSWORD);
    assert.equal(await listUsers(alice.accessToken), 200, 'admin through "user:alice"');

    writeFileSync(file, config());
    const reloaded = await call('POST', '/api/config/reload', adminToken);
    assert.equal(reloaded.status, 200, JSON.stringify(reloaded.body));

    assert.equal(await listUsers(alice.accessToken), 403, 'the token issued while admin');
    const create = await call('POST', '/api/users', alice.accessToken, {
      username: 'mallory',
      password: ALICE_PASSWORD,
    });
    assert.equal(create.status, 403);
    const refreshed = await call('POST', '/api/auth/refresh', undefined, {
      refreshToken: alice.refreshToken,
    });
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
    assert.equal(await listUsers(refreshed.body['accessToken'] as string), 403, 'the refreshed token');
    assert.equal(await listUsers(alice.accessToken), 403);
    assert.equal(await listUsers(adminToken), 200, 'stored bindings are untouched');
    // No session is revoked; the log names whose bindings the reload changed.
    const logged = /Configuration role bindings changed[^\n]*user:alice/;
    await eventually(async () => logged.test(gw.stderr()), true, { message: () => gw.stderr() });
  });

  it('applies a "user:<id>" binding and its removal by SIGHUP to a session without a new login', async () => {
    const alice = await login('alice', ALICE_PASSWORD);
    assert.equal(await listUsers(alice.accessToken), 403);
    writeFileSync(file, config(`user:${aliceId}`));
    gw.child.kill('SIGHUP');
    await eventually(() => listUsers(alice.accessToken), 200, { message: 'admin by id' });
    writeFileSync(file, config());
    gw.child.kill('SIGHUP');
    await eventually(() => listUsers(alice.accessToken), 403, { message: 'removed again' });
  });
});
