import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isolatedPostgres, type IsolatedPostgres, requirePostgres, requireRedis } from '#testing/services';
import { eventually } from '#testing/eventually';
import { type GatewayProcess, startGatewayProcess } from '#testing/start-gateway';
import { startTcpProxy, type TcpProxy } from '#testing/tcp-proxy';

const postgres = requirePostgres();
const redis = requireRedis();
const PASSWORD = 'dependency-loss-password';

let schema: IsolatedPostgres;
let pgProxy: TcpProxy;
let redisProxy: TcpProxy;
let gw: GatewayProcess;

/** Replaces host:port of a service URL with the proxy's. */
function through(url: string, proxy: TcpProxy): string {
  const u = new URL(url);
  u.host = proxy.address;
  return u.toString();
}

const ready = async () => (await fetch(`${gw.url}/readyz`)).status;
const login = async (): Promise<{ status: number; body: { code?: string; accessToken?: string } }> => {
  const response = await fetch(`${gw.url}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: PASSWORD }),
    signal: AbortSignal.timeout(20_000),
  });
  return {
    status: response.status,
    body: (await response.json()) as { code?: string; accessToken?: string },
  };
};

/** A dependency that comes back is seen within 30 s (polled every 200 ms). */
const DEPENDENCY_WAIT = { timeoutMs: 30_000, intervalMs: 200 };

describe('losing PostgreSQL and Redis at run time', { ...postgres.options, ...redis.options }, () => {
  before(async () => {
    schema = await isolatedPostgres(postgres.need(), 'loss');
    pgProxy = await startTcpProxy(new URL(postgres.need()).host);
    redisProxy = await startTcpProxy(new URL(redis.need()).host);
    gw = await startGatewayProcess({
      env: {
        GATEHOUSE_ADMIN_PASSWORD: PASSWORD,
        GATEHOUSE_STORAGE_URL: through(schema.url, pgProxy),
        GATEHOUSE_STORAGE_CONNECT_TIMEOUT: '2s',
        GATEHOUSE_CACHE_URL: through(redis.need(), redisProxy),
        GATEHOUSE_CACHE_KEY_PREFIX: `loss-${process.pid}:`,
        // The scrypt cost of production makes each login slow; this test is about availability.
        GATEHOUSE_AUTH_PASSWORD_SCRYPT_LN: '12',
      },
    });
  });
  after(async () => {
    await gw?.[Symbol.asyncDispose]();
    await pgProxy?.close();
    await redisProxy?.close();
    await schema?.drop();
  });

  it('turns readiness false and answers 503 while PostgreSQL is gone, then recovers by itself', async () => {
    assert.equal(await ready(), 200);
    assert.equal((await login()).status, 200);
    pgProxy.cut();
    await eventually(ready, 503, DEPENDENCY_WAIT);
    const during = await login();
    assert.equal(during.status, 503);
    assert.equal(during.body.code, 'GW_ERR_STORAGE_UNAVAILABLE');
    // An event recorded while the database is gone is held, not lost.
    const cutAt = new Date().toISOString();
    gw.child.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 500));
    pgProxy.restore();
    await eventually(ready, 200, DEPENDENCY_WAIT);
    await eventually(async () => (await login()).status, 200, DEPENDENCY_WAIT);
    const { body } = await login();
    const reloads = async () => {
      const response = await fetch(`${gw.url}/api/audit-logs?action=config.reload&from=${cutAt}`, {
        headers: { authorization: `Bearer ${body.accessToken}` },
      });
      assert.equal(response.status, 200);
      return ((await response.json()) as { events: unknown[] }).events.length;
    };
    await eventually(reloads, 1, DEPENDENCY_WAIT);
  });

  it('turns readiness false while Redis is gone, keeps serving, and recovers by itself', async () => {
    redisProxy.cut();
    await eventually(ready, 503, DEPENDENCY_WAIT);
    assert.equal((await login()).status, 200, 'a cache outage never fails a request');
    redisProxy.restore();
    await eventually(ready, 200, DEPENDENCY_WAIT);
  });
});
