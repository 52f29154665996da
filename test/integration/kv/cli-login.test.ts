import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { closedPort } from '#testing/services';
import { type GatewayProcess, runGatewayCommand, startGatewayProcess } from '#testing/start-gateway';

const PASSWORD = 'correct horse battery staple';
/** The shortest `auth.accessTokenTtl`; access tokens are accepted 5 s past their expiry (clock skew). */
const TTL_MS = 10_000;
const SKEW_MS = 5_000;

const credentials = (home: string) => join(home, 'gatehouse', 'credentials.json');

/**
 * `gatehouse kv` with the saved login of `gatehouse login`: once the access token has expired,
 * the command refreshes it as the HTTP commands do, before the call when the saved expiry says
 * so, or after the listener answered that the token expired.
 */
void describe('gatehouse kv with the saved login', () => {
  let gw: GatewayProcess;
  let kvUrl: string;
  const homes: string[] = [];
  const kv = (home: string, args: readonly string[]) =>
    runGatewayCommand(['kv', ...args, '--kv-url', kvUrl], {
      env: { GATEHOUSE_HOME: gw.home, XDG_CONFIG_HOME: home, HOME: home },
      timeoutMs: 30_000,
    });
  const login = async () => {
    const home = mkdtempSync(join(tmpdir(), 'gatehouse-kv-login-'));
    homes.push(home);
    const res = await runGatewayCommand(['login', '--server', gw.url, '--username', 'admin'], {
      env: { XDG_CONFIG_HOME: home, HOME: home, GATEHOUSE_PASSWORD: PASSWORD },
    });
    assert.equal(res.code, 0, res.stderr);
    return home;
  };
  before(async () => {
    const port = await closedPort();
    kvUrl = `https://127.0.0.1:${port}`;
    gw = await startGatewayProcess({
      env: {
        GATEHOUSE_KV_LISTEN: `127.0.0.1:${port}`,
        GATEHOUSE_ADMIN_PASSWORD: PASSWORD,
        GATEHOUSE_AUTH_ACCESS_TOKEN_TTL: `${TTL_MS}ms`,
      },
    });
  });
  after(async () => {
    await gw?.[Symbol.asyncDispose]();
    for (const home of homes) rmSync(home, { recursive: true, force: true });
  });

  void it('refreshes an expired access token, before the call or on the expired-token answer', async () => {
    // Two logins: one keeps the saved expiry (refreshed before the call), one loses it, as a
    // login saved without one, so only the listener's answer tells that the token expired.
    const [early, answer] = [await login(), await login()];
    for (const home of [early, answer]) {
      const set = await kv(home, ['set', 'sessions', 'k', 'v']);
      assert.equal(set.code, 0, set.stderr);
    }
    const saved = JSON.parse(readFileSync(credentials(answer), 'utf8')) as Record<string, unknown>;
    delete saved['expiresAt'];
    writeFileSync(credentials(answer), JSON.stringify(saved), { mode: 0o600 });
    await sleep(TTL_MS + SKEW_MS + 1500);
    for (const home of [early, answer]) {
      const old = readFileSync(credentials(home), 'utf8');
      const get = await kv(home, ['get', 'sessions', 'k']);
      assert.deepEqual([get.code, get.stdout, get.stderr], [0, 'v', '']);
      const renewed = JSON.parse(readFileSync(credentials(home), 'utf8')) as { accessToken: string };
      assert.notEqual(renewed.accessToken, (JSON.parse(old) as { accessToken: string }).accessToken);
      assert.equal((await kv(home, ['get', 'sessions', 'k'])).stdout, 'v');
    }
  });

  void it('keeps the authentication error when the saved login cannot be refreshed', async () => {
    const home = await login();
    const saved = JSON.parse(readFileSync(credentials(home), 'utf8')) as Record<string, unknown>;
    // A revoked or unknown refresh token: the server refuses to refresh; the call's error stays.
    writeFileSync(
      credentials(home),
      JSON.stringify({ ...saved, accessToken: 'a.b.c', refreshToken: 'unknown', expiresAt: Date.now() - 1 }),
      { mode: 0o600 },
    );
    const get = await kv(home, ['get', 'sessions', 'k']);
    assert.equal(get.code, 3, get.stderr);
  });
});
