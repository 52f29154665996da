import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type GatewayProcess, runGatewayCommand, startGatewayProcess } from '#testing/start-gateway';
import { closedPort } from '#testing/services';

const PASSWORD = 'correct horse battery staple';

/**
 * The whole product: `gatehouse serve` with no kv configuration (embedded SQLite driver, a
 * development CA generated into the data folder) driven by `gatehouse kv …` as people use it.
 */
void describe('gatehouse kv CLI against gatehouse serve', () => {
  let gw: GatewayProcess;
  let kvUrl: string;
  let token: string;
  const kv = (args: readonly string[], withToken = true) =>
    runGatewayCommand(['kv', ...args, '--kv-url', kvUrl, ...(withToken ? ['--token', token] : [])], {
      env: { GATEHOUSE_HOME: gw.home },
      timeoutMs: 30_000,
    });
  before(async () => {
    const port = await closedPort();
    kvUrl = `https://127.0.0.1:${port}`;
    gw = await startGatewayProcess({
      env: { GATEHOUSE_KV_LISTEN: `127.0.0.1:${port}`, GATEHOUSE_ADMIN_PASSWORD: PASSWORD },
    });
    const res = await fetch(`${gw.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: PASSWORD }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    token = ((await res.json()) as { accessToken: string }).accessToken;
  });
  after(async () => gw?.[Symbol.asyncDispose]());

  void it('generated the development CA and the embedded kv database in the data folder', () => {
    assert.ok(existsSync(join(gw.home, 'tls', 'ca.crt')));
    assert.ok(existsSync(join(gw.home, 'kv.sqlite')));
  });

  void it('sets, gets, lists and deletes keys', async () => {
    const set = await kv([
      'set',
      'orders',
      'greeting',
      'hello world',
      '--ttl',
      '1h',
      '--metadata',
      '{"by":"cli"}',
    ]);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /^version \d+/);
    const get = await kv(['get', 'orders', 'greeting']);
    assert.equal(get.stdout, 'hello world');
    const json = JSON.parse((await kv(['get', 'orders', 'greeting', '--json'])).stdout) as Record<
      string,
      unknown
    >;
    assert.equal(Buffer.from(String(json['value']), 'base64').toString(), 'hello world');
    assert.equal(json['metadata'], '{"by":"cli"}');
    assert.ok(Number(json['ttlMs']) > 3_000_000);
    await kv(['set', 'orders', 'other', 'x']);
    const ls = await kv(['ls', 'orders', '--json']);
    assert.deepEqual(JSON.parse(ls.stdout), [{ key: 'greeting' }, { key: 'other' }]);
    const stale = await kv(['set', 'orders', 'greeting', 'again', '--if-version', '999']);
    assert.equal(stale.code, 1);
    assert.match(stale.stderr, /version/i);
    assert.equal((await kv(['del', 'orders', 'greeting'])).stdout.trim(), 'deleted');
    const missing = await kv(['get', 'orders', 'greeting']);
    assert.equal(missing.code, 1);
  });

  void it('exits with the authentication and usage codes', async () => {
    const anonymous = await kv(['get', 'orders', 'greeting'], false);
    assert.equal(anonymous.code, 3, anonymous.stderr);
    assert.match(anonymous.stderr, /Authentication required/);
    const bad = await kv(['get', 'Not_A_Namespace', 'k']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /"namespace"/);
    assert.equal((await kv(['set', 'orders', 'k', 'v', '--ttl', '1.5s'])).code, 2);
  });
});
