import assert from 'node:assert/strict';
import { once } from 'node:events';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCliCaptured } from '#testing/cli-run';
import { credentialsPath, saveLogin } from './client.ts';
import { identityCommands } from './identity.ts';

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

void describe('gatehouse logout', () => {
  const calls: { auth: string | undefined; body: string }[] = [];
  let status = 204;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      calls.push({ auth: req.headers.authorization, body });
      res.writeHead(status, { 'content-type': 'application/problem+json' });
      res.end(status === 204 ? undefined : JSON.stringify({ detail: 'Nope', code: 'GW_ERR_INTERNAL' }));
    });
  });
  let url: string;
  let home: string;
  before(async () => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    home = await mkdtemp(join(tmpdir(), 'gatehouse-logout-'));
  });
  after(async () => {
    server.close();
    await rm(home, { recursive: true, force: true });
  });

  void it('removes the saved login once the server ended its session, and keeps it otherwise', async () => {
    const env = { HOME: home };
    await saveLogin(env, { server: url, accessToken: 'at', refreshToken: 'rt', username: 'alice' });
    status = 500;
    const failed = await runCliCaptured(['logout'], identityCommands, env);
    assert.equal(failed.code, 1, failed.err);
    assert.equal(
      await exists(credentialsPath(env)),
      true,
      'a session still live on the server stays revocable',
    );
    status = 204;
    const run = await runCliCaptured(['logout', '--json'], identityCommands, env);
    assert.equal(run.code, 0, run.err);
    assert.equal(calls.at(-1)?.auth, 'Bearer at');
    assert.equal(await exists(credentialsPath(env)), false, 'revoked tokens are not left on disk');
    // With no saved login left, logging out again is refused as not logged in, not "Logged out".
    const again = await runCliCaptured(['logout'], identityCommands, env);
    assert.notEqual(again.code, 0);
  });
});

void describe('gatehouse login with a saved login', () => {
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(req.url ?? '');
    req.resume();
    req.on('end', () => {
      const refresh = req.url === '/api/auth/refresh';
      res.writeHead(refresh ? 200 : 401, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify(
          refresh
            ? { accessToken: 'at2', refreshToken: 'rt2', expiresIn: 900 }
            : { detail: 'The user name or password is wrong', code: 'GW_ERR_AUTH_INVALID_CREDENTIALS' },
        ),
      );
    });
  });
  let home: string;
  before(async () => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    home = await mkdtemp(join(tmpdir(), 'gatehouse-login-'));
  });
  after(async () => {
    server.close();
    await rm(home, { recursive: true, force: true });
  });

  void it('sends a refused password once: no refresh of the saved session and no second attempt', async () => {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const env = { HOME: home, GATEHOUSE_URL: url, GATEHOUSE_PASSWORD: 'wrong password!' };
    await saveLogin(env, { server: url, accessToken: 'at', refreshToken: 'rt', username: 'alice' });
    const run = await runCliCaptured(['login', '--username', 'alice'], identityCommands, env);
    assert.equal(run.code, 3, run.err);
    assert.match(run.err, /The user name or password is wrong/);
    assert.deepEqual(paths, ['/api/auth/login']);
  });
});
