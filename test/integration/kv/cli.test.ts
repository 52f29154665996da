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

  void it('takes --if-version as a decimal uint64 and refuses anything else as usage', async () => {
    const first = await kv(['set', 'cas', 'fresh', 'a', '--if-version', '0']);
    assert.equal(first.code, 0, first.stderr);
    const again = await kv(['set', 'cas', 'fresh', 'b', '--if-version', '0']);
    assert.equal(again.code, 1, 'version 0 means only if absent');
    const version = /^version (\d+)/.exec(first.stdout)?.[1] ?? '';
    assert.equal((await kv(['set', 'cas', 'fresh', 'c', '--if-version', version])).code, 0);
    for (const text of ['1.5', '-1', '99999999999999999999']) {
      const bad = await kv(['set', 'cas', 'fresh', 'd', '--if-version', text, '--json']);
      assert.equal(bad.code, 2, bad.stderr);
      assert.deepEqual(JSON.parse(bad.stdout), {
        error: {
          message: `Invalid "--if-version" "${text}": expected a whole number from 0 (only if absent) to 18446744073709551615`,
          code: 'GW_ERR_CLI_USAGE',
        },
      });
    }
    assert.equal((await kv(['get', 'cas', 'fresh'])).stdout, 'c');
  });

  void it('lists --limit keys and refuses a limit below 1', async () => {
    for (const key of ['a', 'b', 'c']) await kv(['set', 'limits', key, 'x']);
    assert.deepEqual(JSON.parse((await kv(['ls', 'limits', '--limit', '2', '--json'])).stdout), [
      { key: 'a' },
      { key: 'b' },
    ]);
    const negative = await kv(['ls', 'limits', '--limit', '-1']);
    assert.equal(negative.code, 2, negative.stdout);
    assert.match(negative.stderr, /Invalid "--limit" "-1": expected a whole number from 1/);
  });

  void it('escapes control characters of keys for people, not in JSON or piped values', async () => {
    const keys = ['evil\u001b[31mred', 'line1\nline2'];
    for (const key of keys) assert.equal((await kv(['set', 'tenant', key, 'v\u001b[0m'])).code, 0);
    const ls = await kv(['ls', 'tenant']);
    assert.equal(ls.stdout, 'KEY\nevil\\x1b[31mred\nline1\\nline2\n');
    assert.deepEqual(
      (JSON.parse((await kv(['ls', 'tenant', '--json'])).stdout) as { key: string }[]).map((r) => r.key),
      keys,
    );
    assert.equal((await kv(['get', 'tenant', keys[0] ?? ''])).stdout, 'v\u001b[0m');
  });

  void it('names the kv URL and the reason when no kv listener answers', async () => {
    const cases = [
      [`https://127.0.0.1:${await closedPort()}`, 'connection refused (ECONNREFUSED)'],
      [
        gw.url.replace('http:', 'https:'),
        'TLS handshake failed: the port does not speak TLS (ERR_SSL_WRONG_VERSION_NUMBER)',
      ],
      [
        kvUrl.replace('https:', 'http:'),
        'the connection closed without an answer; a kv listener speaks TLS: use an https:// URL',
      ],
    ] as const;
    for (const [url, reason] of cases) {
      const args = ['kv', 'ls', 'orders', '--kv-url', url, '--token', token];
      const env = { env: { GATEHOUSE_HOME: gw.home }, timeoutMs: 30_000 };
      const message = `Cannot reach the Gatehouse kv listener at "${url}": ${reason}`;
      const human = await runGatewayCommand(args, env);
      assert.deepEqual([human.code, human.stderr], [1, `error: ${message}\n`]);
      const json = await runGatewayCommand([...args, '--json'], env);
      assert.deepEqual(JSON.parse(json.stdout), { error: { message, code: 'GW_ERR_CLI_NO_SERVER' } });
    }
  });
});
