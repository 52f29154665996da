import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runGatewayCommand, startGatewayProcess, type GatewayProcess } from '#testing/start-gateway';

const ADMIN_PASSWORD = 'cli-admin-password-123';
const dirs: string[] = [];
let gw: GatewayProcess;
let configHome: string;

before(async () => {
  gw = await startGatewayProcess({ env: { GATEHOUSE_ADMIN_PASSWORD: ADMIN_PASSWORD } });
  configHome = mkdtempSync(join(tmpdir(), 'gatehouse-cli-'));
  dirs.push(configHome);
});
after(async () => {
  await gw[Symbol.asyncDispose]();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Runs the real CLI with a private config home, so the saved login is this test's. */
function cli(args: string[], env: Record<string, string> = {}) {
  return runGatewayCommand(args, { env: { XDG_CONFIG_HOME: configHome, HOME: configHome, ...env } });
}

describe('gatehouse CLI against a real server', () => {
  it('logs in, saves the tokens privately, and uses them', async () => {
    const wrong = await cli(['login', '--server', gw.url, '--username', 'admin'], {
      GATEHOUSE_PASSWORD: 'nope-nope-nope',
    });
    assert.equal(wrong.code, 3);
    assert.match(wrong.stderr, /GW_ERR_AUTH_INVALID_CREDENTIALS/);
    // A failed login backs this address off for auth.lockout.backoffBase (1 s) before the next.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const ok = await cli(['login', '--server', gw.url, '--username', 'admin'], {
      GATEHOUSE_PASSWORD: ADMIN_PASSWORD,
    });
    assert.equal(ok.code, 0, ok.stderr);
    const saved = join(configHome, 'gatehouse', 'credentials.json');
    assert.equal(statSync(saved).mode & 0o777, 0o600);
    assert.equal(JSON.parse(readFileSync(saved, 'utf8')).server, gw.url);
    const users = await cli(['users', 'ls', '--json']);
    assert.equal(users.code, 0, users.stderr);
    assert.deepEqual(
      (JSON.parse(users.stdout) as { username: string }[]).map((u) => u.username),
      ['admin'],
    );
  });

  it('creates a user with roles and prints a table for people', async () => {
    const add = await cli(['users', 'add', 'alice', '--role', 'publisher', '--namespace', 'team-a'], {
      GATEHOUSE_PASSWORD: 'alice-password-123',
    });
    assert.equal(add.code, 0, add.stderr);
    const table = await cli(['users', 'ls']);
    assert.match(table.stdout, /^USERNAME\s+ROLES\s+STATE/m);
    assert.match(table.stdout, /^alice\s+publisher@team-a\s+active/m);
    const bad = await cli(['users', 'add', 'bob', '--role', 'emperor'], {
      GATEHOUSE_PASSWORD: 'bob-password-1234',
    });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /Unknown role "emperor"/);
  });

  it('unlocks a user through the server with --api, audited', async () => {
    const unlocked = await cli(['users', 'unlock', 'alice', '--api', '--json']);
    assert.equal(unlocked.code, 0, unlocked.stderr);
    assert.equal((JSON.parse(unlocked.stdout) as { username: string }).username, 'alice');
    const events = await cli(['audit', 'ls', '--action', 'user.unlock', '--json']);
    assert.equal(events.code, 0, events.stderr);
    assert.match(events.stdout, /user:alice/);
    const unknown = await cli(['users', 'unlock', 'nobody', '--api']);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /GW_ERR_USER_NOT_FOUND/);
  });

  it('creates an API key shown once, which works until it is revoked', async () => {
    const created = await cli(['keys', 'add', 'ci', '--role', 'auditor', '--json']);
    assert.equal(created.code, 0, created.stderr);
    const key = JSON.parse(created.stdout) as { id: string; secret: string };
    const listed = await cli(['keys', 'ls', '--json']);
    assert.ok(!listed.stdout.includes(key.secret), 'the secret is never listed');
    const withKey = await cli(['audit', 'ls', '--server', gw.url, '--token', key.secret, '--json']);
    assert.equal(withKey.code, 0, withKey.stderr);
    assert.ok((JSON.parse(withKey.stdout) as { events: unknown[] }).events.length > 0);
    assert.equal((await cli(['keys', 'rm', key.id])).code, 0);
    const revoked = await cli(['audit', 'ls', '--server', gw.url, '--token', key.secret]);
    assert.equal(revoked.code, 3);
    assert.match(revoked.stderr, /GW_ERR_AUTH_KEY_INVALID/);
  });

  it('finds the server and credentials in GATEHOUSE_URL and GATEHOUSE_TOKEN, before the saved login', async () => {
    const created = await cli(['keys', 'add', 'env-key', '--role', 'admin', '--json']);
    const key = JSON.parse(created.stdout) as { secret: string };
    const empty = mkdtempSync(join(tmpdir(), 'gatehouse-cli-env-'));
    dirs.push(empty);
    const env = { XDG_CONFIG_HOME: empty, HOME: empty, GATEHOUSE_URL: gw.url, GATEHOUSE_TOKEN: key.secret };
    const listed = await runGatewayCommand(['users', 'ls', '--json'], { env });
    assert.equal(listed.code, 0, listed.stderr);
    const wrong = await runGatewayCommand(['users', 'ls'], {
      env: { ...env, GATEHOUSE_TOKEN: 'gh_nope_nope' },
    });
    assert.equal(wrong.code, 3);
    const down = await runGatewayCommand(['users', 'ls'], {
      env: { ...env, GATEHOUSE_URL: 'http://127.0.0.1:9' },
    });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /Cannot reach the Gatehouse server at "http:\/\/127\.0\.0\.1:9"/);
  });

  it('verifies the audit chain on the server', async () => {
    const verify = await cli(['audit', 'verify', '--server', gw.url, '--json']);
    assert.equal(verify.code, 0, verify.stderr);
    assert.equal(JSON.parse(verify.stdout).ok, true);
  });
});

describe('gatehouse audit verify on the data folder', () => {
  it('detects a changed record in the JSONL file after the server stopped', async () => {
    await using local = await startGatewayProcess({ env: { GATEHOUSE_ADMIN_PASSWORD: ADMIN_PASSWORD } });
    for (let i = 0; i < 3; i += 1) {
      await fetch(`${local.url}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'admin', password: i === 1 ? 'wrong-password' : ADMIN_PASSWORD }),
      });
    }
    await local.stop();
    const env = { GATEHOUSE_HOME: local.home };
    const clean = await runGatewayCommand(['audit', 'verify'], { env });
    assert.equal(clean.code, 0, clean.stderr);
    assert.match(clean.stdout, /ok: \d+ audit record\(s\) verified/);
    const file = join(local.home, 'audit.jsonl');
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    const denied = lines.findIndex((l) => l.includes('"deny"'));
    assert.ok(denied >= 0, 'the failed login was audited');
    lines[denied] = (lines[denied] ?? '').replace('"deny"', '"allow"');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const tampered = await runGatewayCommand(['audit', 'verify'], { env });
    assert.equal(tampered.code, 1);
    assert.match(tampered.stdout, /broken: the audit chain is broken at record \d+/);
  });
});
