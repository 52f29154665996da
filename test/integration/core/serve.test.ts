import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runGatewayCommand, startGatewayProcess } from '#testing/start-gateway';

const homes: string[] = [];
after(() => {
  for (const home of homes) rmSync(home, { recursive: true, force: true });
});
function freshHome(): string {
  const home = mkdtempSync(join(tmpdir(), 'gatehouse-serve-'));
  homes.push(home);
  return home;
}

async function login(url: string, username: string, password: string) {
  return fetch(`${url}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
}

/** A TCP port on 127.0.0.1 that nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  await new Promise<void>((r) => server.close(() => r()));
  return typeof address === 'object' && address !== null ? address.port : 1;
}

describe('gatehouse serve on the embedded default', () => {
  it('cold-starts, bootstraps admin once, answers health and readiness, and reuses the folder', async () => {
    const home = freshHome();
    const started = Date.now();
    {
      await using gw = await startGatewayProcess({ home });
      assert.ok(
        gw.adminPassword !== undefined && gw.adminPassword.length >= 16,
        'prints the admin password once',
      );
      const health = await fetch(`${gw.url}/healthz`);
      assert.equal(health.status, 200);
      const ready = await fetch(`${gw.url}/readyz`);
      assert.equal(ready.status, 200, await ready.text());
      assert.ok(Date.now() - started < 20_000, 'ready within 20 s of a cold start');
      assert.ok(existsSync(join(home, 'gatehouse.db')), 'SQLite database in the data folder');
      assert.equal(statSync(home).mode & 0o777, 0o700, 'data folder is private');
      const response = await login(gw.url, 'admin', gw.adminPassword);
      assert.equal(response.status, 200);
      const tokens = (await response.json()) as {
        accessToken: string;
        refreshToken: string;
        expiresIn: number;
      };
      assert.ok(tokens.accessToken.length > 20 && tokens.refreshToken.length > 20 && tokens.expiresIn > 0);
      const password = gw.adminPassword;
      await gw.stop();
      {
        await using again = await startGatewayProcess({ home });
        assert.equal(again.adminPassword, undefined, 'a second start does not bootstrap again');
        assert.equal((await login(again.url, 'admin', password)).status, 200);
      }
    }
    const audit = readFileSync(join(home, 'audit.jsonl'), 'utf8');
    assert.match(audit, /auth\.login/);
  });

  it('shows the generated admin password even when the first start fails after creating the account', async () => {
    const home = freshHome();
    // The listen port is taken: the start fails after the admin account was bootstrapped.
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const address = busy.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    let printed: string | undefined;
    try {
      const failed = await runGatewayCommand(['serve', '--listen', `127.0.0.1:${port}`], {
        env: { GATEHOUSE_HOME: home, GATEHOUSE_KV_LISTEN: '127.0.0.1:0', GATEHOUSE_LOG_LEVEL: 'warn' },
      });
      assert.notEqual(failed.code, 0);
      assert.match(failed.stderr, /Cannot start/);
      printed = /password: (\S+)/.exec(failed.stdout)?.[1];
      assert.ok(printed !== undefined && printed.length >= 16, failed.stdout + failed.stderr);
    } finally {
      await new Promise<void>((r) => busy.close(() => r()));
    }
    await using gw = await startGatewayProcess({ home });
    assert.equal(gw.adminPassword, undefined, 'not bootstrapped a second time');
    assert.equal((await login(gw.url, 'admin', printed)).status, 200);
  });

  it('takes the admin password from GATEHOUSE_ADMIN_PASSWORD and never prints it', async () => {
    const password = 'correct-horse-battery-staple';
    await using gw = await startGatewayProcess({ env: { GATEHOUSE_ADMIN_PASSWORD: password } });
    assert.equal(gw.adminPassword, undefined);
    assert.ok(!gw.stdout().includes(password));
    assert.equal((await login(gw.url, 'admin', password)).status, 200);
  });

  it('drains an in-flight request on SIGTERM, then exits 0', async () => {
    await using gw = await startGatewayProcess({
      env: { GATEHOUSE_ADMIN_PASSWORD: 'drain-test-password-1' },
    });
    const body = JSON.stringify({ username: 'admin', password: 'drain-test-password-1' });
    const url = new URL(`${gw.url}/api/auth/login`);
    // Half of the body is sent before SIGTERM and the rest after: the request is in flight.
    const request = httpRequest({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    const response = new Promise<number>((resolveStatus, reject) => {
      request.on('response', (res) => {
        res.resume();
        res.on('end', () => resolveStatus(res.statusCode ?? 0));
      });
      request.on('error', reject);
    });
    await new Promise<void>((r) => request.write(body.slice(0, 10), () => r()));
    await new Promise((r) => setTimeout(r, 200));
    const exited = gw.stop('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    request.end(body.slice(10));
    assert.equal(await response, 200);
    assert.equal(await exited, 0);
  });
});

describe('gatehouse serve refuses bad input with a clear error and a non-zero exit', () => {
  it('names every bad key of a malformed config file', async () => {
    const home = freshHome();
    const file = join(home, 'gatehouse.yaml');
    writeFileSync(file, 'server:\n  listen: 7070\n  shutdownTimeout: soon\nlog:\n  level: loud\n');
    const result = await runGatewayCommand(['serve', '--config', file], { env: { GATEHOUSE_HOME: home } });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /server\.shutdownTimeout: "soon"; expected a duration/);
    assert.match(result.stderr, /log\.level: "loud"; expected one of/);
  });

  it('names the environment variable of a wrongly typed override', async () => {
    const result = await runGatewayCommand(['serve'], {
      env: { GATEHOUSE_HOME: freshHome(), GATEHOUSE_STORAGE_POOL_SIZE: 'lots' },
    });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /storage\.poolSize: "lots".*\(from GATEHOUSE_STORAGE_POOL_SIZE\)/);
  });

  it('reports a corrupt database file by name', async () => {
    const home = freshHome();
    writeFileSync(join(home, 'gatehouse.db'), Buffer.alloc(8192, 0x5a));
    const result = await runGatewayCommand(['serve', '--listen', '127.0.0.1:0'], {
      env: { GATEHOUSE_HOME: home },
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /gatehouse\.db/);
    assert.match(result.stderr, /GW_ERR_STORAGE_CORRUPT/);
  });

  it('reports an unreachable PostgreSQL at start', async () => {
    const port = await closedPort();
    const result = await runGatewayCommand(['serve', '--listen', '127.0.0.1:0'], {
      env: {
        GATEHOUSE_HOME: freshHome(),
        GATEHOUSE_STORAGE_URL: `postgres://postgres@127.0.0.1:${port}/test`,
      },
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /GW_ERR_STORAGE_UNAVAILABLE/);
  });

  it('reports an unreachable Redis at start', async () => {
    const port = await closedPort();
    const result = await runGatewayCommand(['serve', '--listen', '127.0.0.1:0'], {
      env: { GATEHOUSE_HOME: freshHome(), GATEHOUSE_CACHE_URL: `redis://127.0.0.1:${port}` },
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /GW_ERR_CACHE_UNAVAILABLE/);
  });
});
