import assert from 'node:assert/strict';
import { once } from 'node:events';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCliCaptured } from '#testing/cli-run';
import { createApiClient, credentialsPath, readSavedLogin, saveLogin } from './client.ts';
import { identityCommands } from './identity.ts';

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

type Answer = (status: number, value?: unknown) => void;

/**
 * A fake Gatehouse server for this suite (`handle` gets each request with its body read) and a
 * home folder for the saved login; both ready inside the tests and gone after them.
 */
function fakeServer(handle: (req: IncomingMessage, body: string, answer: Answer) => void) {
  const server = createServer((req, res: ServerResponse) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () =>
      handle(req, body, (status, value) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(value === undefined ? undefined : JSON.stringify(value));
      }),
    );
  });
  const fake = { url: '', env: {} as Record<string, string> };
  before(async () => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    fake.env = { HOME: await mkdtemp(join(tmpdir(), 'gatehouse-session-')) };
  });
  after(async () => {
    server.close();
    await rm(fake.env['HOME'] ?? '', { recursive: true, force: true });
  });
  return fake;
}

void describe('gatehouse logout', () => {
  const calls: (string | undefined)[] = [];
  let status = 204;
  const fake = fakeServer((req, _body, answer) => {
    calls.push(req.headers.authorization);
    answer(status, status === 204 ? undefined : { detail: 'Nope', code: 'GW_ERR_INTERNAL' });
  });

  void it('removes the saved login once the server ended its session, and keeps it otherwise', async () => {
    const { env, url } = fake;
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
    assert.equal(calls.at(-1), 'Bearer at');
    assert.equal(await exists(credentialsPath(env)), false, 'revoked tokens are not left on disk');
    // With no saved login left, logging out again is refused as not logged in, not "Logged out".
    const again = await runCliCaptured(['logout'], identityCommands, env);
    assert.notEqual(again.code, 0);
  });
});

void describe('gatehouse login with a saved login', () => {
  const paths: string[] = [];
  const fake = fakeServer((req, _body, answer) => {
    paths.push(req.url ?? '');
    if (req.url === '/api/auth/refresh')
      answer(200, { accessToken: 'at2', refreshToken: 'rt2', expiresIn: 900 });
    else
      answer(401, { detail: 'The user name or password is wrong', code: 'GW_ERR_AUTH_INVALID_CREDENTIALS' });
  });

  void it('sends a refused password once: no refresh of the saved session and no second attempt', async () => {
    const env = { ...fake.env, GATEHOUSE_URL: fake.url, GATEHOUSE_PASSWORD: 'wrong password!' };
    await saveLogin(env, { server: fake.url, accessToken: 'at', refreshToken: 'rt', username: 'alice' });
    const run = await runCliCaptured(['login', '--username', 'alice'], identityCommands, env);
    assert.equal(run.code, 3, run.err);
    assert.match(run.err, /The user name or password is wrong/);
    assert.deepEqual(paths, ['/api/auth/login']);
  });
});

void describe('commands sharing a saved login', () => {
  let refreshes = 0;
  let refused = 0;
  const bothRefused = Promise.withResolvers<void>();
  const spent = new Set<string>();
  const fake = fakeServer((req, body, answer) => {
    if (req.url === '/api/auth/refresh') {
      refreshes += 1;
      const { refreshToken } = JSON.parse(body) as { refreshToken: string };
      // The server's rotation: a spent refresh token is reuse, and ends the session.
      if (spent.has(refreshToken)) return answer(401, { detail: 'The refresh token was already used' });
      spent.add(refreshToken);
      void bothRefused.promise.then(() =>
        answer(200, { accessToken: 'at2', refreshToken: 'rt2', expiresIn: 900 }),
      );
      return undefined;
    }
    if (req.headers.authorization === 'Bearer at2') return answer(200, { ok: true });
    refused += 1;
    if (refused === 2) bothRefused.resolve();
    return answer(401, { detail: 'The access token has expired' });
  });

  void it('refresh an expired session once when two run at the same time (the second is no reuse)', async () => {
    const { env, url } = fake;
    const saved = { server: url, accessToken: 'at', refreshToken: 'rt', username: 'alice' };
    await saveLogin(env, saved);
    const call = () => createApiClient({ server: url, env, saved }).request('GET', '/api/things');
    assert.deepEqual(await Promise.all([call(), call()]), [{ ok: true }, { ok: true }]);
    assert.equal(refreshes, 1);
    assert.equal((await readSavedLogin(env))?.refreshToken, 'rt2');
  });
});
