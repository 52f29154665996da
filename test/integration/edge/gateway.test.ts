import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type GatewayProcess, runGatewayCommand, startGatewayProcess } from '#testing/start-gateway';
import { createTestPki, type TestPki } from './certs.ts';
import { type Backend, curl, startHttpsBackend } from './peers.ts';

const ADMIN_PASSWORD = 'edge-admin-password-123';

void describe('edge door in the real gateway process', () => {
  let pki: TestPki;
  let backend: Backend;
  let home: string;
  let configFile: string;

  before(async () => {
    pki = await createTestPki();
    backend = await startHttpsBackend(
      await pki.issue('gw', ['seeded.gw.test', 'added.gw.test']),
      'gw-backend',
    );
    home = mkdtempSync(join(tmpdir(), 'edge-gw-home-'));
    configFile = join(home, 'gatehouse.yaml');
    writeFileSync(
      configFile,
      [
        'edge:',
        '  enabled: true',
        '  listeners:',
        '    - { id: public, host: 127.0.0.1, port: 0, preludeTimeout: 1s }',
        '  routes:',
        `    - { id: seeded, listener: public, host: seeded.gw.test, backend: "${backend.address}" }`,
        '',
      ].join('\n'),
    );
  });

  after(async () => {
    await backend[Symbol.asyncDispose]();
    await pki[Symbol.asyncDispose]();
    rmSync(home, { recursive: true, force: true });
  });

  const start = () =>
    startGatewayProcess({
      home,
      args: ['--config', configFile],
      env: { GATEHOUSE_ADMIN_PASSWORD: ADMIN_PASSWORD },
    });

  const session = async (gw: GatewayProcess) => {
    const login = await fetch(`${gw.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
    });
    assert.equal(login.status, 200);
    const { accessToken } = (await login.json()) as { accessToken: string };
    const listeners = await fetch(`${gw.url}/api/edge/listeners`, {
      headers: { authorization: `Bearer ${accessToken}` },
    });
    const port = ((await listeners.json()) as { listeners: { port: number }[] }).listeners[0]?.port ?? 0;
    const cli = (...args: string[]) =>
      runGatewayCommand([...args, '--server', gw.url, '--token', accessToken]);
    return { port, cli };
  };

  void it('seeds from config once, takes CLI changes at run time, and keeps them across a restart', async () => {
    const first = await start();
    try {
      const { port, cli } = await session(first);
      assert.equal((await curl('seeded.gw.test', port, pki.caFile)).stdout, 'gw-backend');
      const add = await cli(
        'routes',
        'add',
        'added',
        '--listener',
        'public',
        '--host',
        'added.gw.test',
        '--backend',
        backend.address,
      );
      assert.equal(add.code, 0, add.stderr);
      assert.equal((await curl('added.gw.test', port, pki.caFile)).stdout, 'gw-backend');
      assert.equal((await cli('routes', 'remove', 'seeded')).code, 0);
      assert.notEqual((await curl('seeded.gw.test', port, pki.caFile)).code, 0);
      const metrics = await (await fetch(`${first.url}/metrics`)).text();
      assert.match(
        metrics,
        /gatehouse_edge_connections_total\{listener="public",route="added",mode="l4",match="exact"\} 1/,
      );
    } finally {
      await first.stop('SIGTERM');
    }
    const second = await start();
    try {
      const { port, cli } = await session(second);
      const list = await cli('routes', 'list', '--json');
      assert.equal(list.code, 0, list.stderr);
      assert.deepEqual(
        (JSON.parse(list.stdout) as { id: string }[]).map((r) => r.id),
        ['added'],
        'not re-seeded',
      );
      assert.equal((await curl('added.gw.test', port, pki.caFile)).stdout, 'gw-backend');
    } finally {
      await second.stop('SIGTERM');
    }
  });
});
