import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually } from '#testing/eventually';
import { type GatewayProcess, startGatewayProcess } from '#testing/start-gateway';

const PASSWORD = 'reload-admin-password-1';
let home: string;
let file: string;
let gw: GatewayProcess;
let token: string;

const config = (burst: number, maxInFlight = 1024) =>
  `server:\n  maxInFlight: ${maxInFlight}\n  rateLimit:\n    rate: 50\n    burst: ${burst}\n`;

/** The API rate limit in force, as the server reports it. */
async function limit(): Promise<string | null> {
  const response = await fetch(`${gw.url}/api/health`, { headers: { authorization: `Bearer ${token}` } });
  await response.arrayBuffer();
  return response.headers.get('ratelimit-limit');
}

async function reload(): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${gw.url}/api/config/reload`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

before(async () => {
  home = mkdtempSync(join(tmpdir(), 'gatehouse-reload-'));
  file = join(home, 'gatehouse.yaml');
  writeFileSync(file, config(100));
  gw = await startGatewayProcess({
    home,
    args: ['--config', file],
    env: { GATEHOUSE_ADMIN_PASSWORD: PASSWORD },
  });
  const response = await fetch(`${gw.url}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: PASSWORD }),
  });
  token = ((await response.json()) as { accessToken: string }).accessToken;
});
after(async () => {
  await gw[Symbol.asyncDispose]();
  rmSync(home, { recursive: true, force: true });
});

describe('dynamic configuration reload', () => {
  it('swaps a dynamic section through the admin API and reports static changes as needing a restart', async () => {
    assert.equal(await limit(), '100');
    writeFileSync(file, config(7, 512));
    const { status, body } = await reload();
    assert.equal(status, 200, JSON.stringify(body));
    // `serve` also watches the file (200 ms debounce): on a loaded machine the watch can apply the
    // rate limit before this call arrives, which then finds it already live and reports no change.
    const changed = body['changed'] as string[];
    assert.ok(changed.includes('server.rateLimit') || changed.length === 0, JSON.stringify(body));
    assert.ok((body['restartNeeded'] as string[]).includes('server.maxInFlight'), JSON.stringify(body));
    assert.equal(await limit(), '7');
  });

  it('keeps the last good configuration when the new document is invalid, and audits the failure', async () => {
    writeFileSync(file, config(-3));
    const { status, body } = await reload();
    assert.equal(status, 400);
    assert.equal(body['code'], 'GW_ERR_CONFIG_INVALID');
    assert.deepEqual(
      (body['errors'] as { path: string }[]).map((e) => e.path),
      ['server.rateLimit.burst'],
    );
    assert.equal(await limit(), '7');
    const audit = readFileSync(join(home, 'audit.jsonl'), 'utf8');
    assert.match(audit, /"action":"config\.reload"[^\n]*"decision":"error"/);
    // Who asked for it through the API, from where, with the request id the client got.
    const requests = audit
      .split('\n')
      .filter((line) => line.includes('"action":"config.reload.request"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const last = requests.at(-1);
    assert.match(String(last?.['actor']), /^user:u_/);
    assert.equal(last?.['decision'], 'error');
    assert.equal(last?.['clientIp'], '127.0.0.1');
    assert.equal(typeof last?.['requestId'], 'string');
  });

  it('refuses a reload whose registry policy does not compile, naming the key, and keeps the last good one', async () => {
    writeFileSync(
      file,
      `${config(7)}registry:\n  policy:\n    rules:\n      - { id: age, type: minimumAge }\n      - { id: age, type: minimumAge }\n`,
    );
    const { status, body } = await reload();
    assert.equal(status, 400, JSON.stringify(body));
    assert.equal(body['code'], 'GW_ERR_CONFIG_INVALID');
    const errors = body['errors'] as { path: string; expected: string }[];
    assert.deepEqual(
      errors.map((e) => e.path),
      ['registry.policy'],
    );
    assert.match(errors[0]?.expected ?? '', /Duplicate rule id "age"/);
    assert.equal(await limit(), '7');
    writeFileSync(file, config(7));
  });

  it('reloads on SIGHUP', async () => {
    writeFileSync(file, config(11));
    gw.child.kill('SIGHUP');
    await eventually(limit, '11');
  });

  it('reloads when the file changes', async () => {
    writeFileSync(file, config(13));
    await eventually(limit, '13');
  });

  it('refuses a reload by a principal without config:reload', async () => {
    const response = await fetch(`${gw.url}/api/config/reload`, { method: 'POST' });
    assert.equal(response.status, 401);
  });
});

describe('per-role address allow-lists', () => {
  it('stops the admin role from outside its network while the same token keeps working inside it', async () => {
    const users = async () =>
      (await fetch(`${gw.url}/api/users`, { headers: { authorization: `Bearer ${token}` } })).status;
    assert.equal(await users(), 200, 'before');
    writeFileSync(file, `${config(50)}  roleAllowedCidrs:\n    admin: ["10.0.0.0/8"]\n`);
    // Whichever comes first applies it: this call (200), or serve's own file watch (200 ms
    // debounce, on a loaded machine before the call arrives), after which the call is fenced (403).
    const first = await reload();
    assert.ok(first.status === 200 || first.status === 403, JSON.stringify(first));
    assert.equal(await users(), 403, 'admin is not usable from 127.0.0.1 any more');
    // The fenced admin cannot undo it through the API; the operator on the host can (SIGHUP).
    assert.equal((await reload()).status, 403);
    writeFileSync(file, `${config(50)}  roleAllowedCidrs:\n    admin: ["127.0.0.0/8"]\n`);
    gw.child.kill('SIGHUP');
    await eventually(users, 200);
  });
});
