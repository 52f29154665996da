import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { PassThrough, Readable } from 'node:stream';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createAuthService } from '#core/auth';
import { createLogger } from '#core/log';
import { runCliCaptured } from '#testing/cli-run';
import { closedPort } from '#testing/services';
import { openLocalStorage } from './config.ts';
import { type CommandContext, runCli } from './framework.ts';
import { identityCommands } from './identity.ts';

const PASSWORD = 'correct horse battery staple';
const log = createLogger({ level: 'silent' });

/** A data folder with a fast scrypt and an account-wide backoff from the second failure. */
async function dataFolder() {
  const home = await mkdtemp(join(tmpdir(), 'gatehouse-unlock-'));
  const env = {
    GATEHOUSE_HOME: home,
    GATEHOUSE_AUTH_PASSWORD_SCRYPT_LN: '10',
    GATEHOUSE_AUTH_LOCKOUT_ACCOUNT_MAX_FAILURES: '2',
    GATEHOUSE_AUTH_LOCKOUT_BACKOFF_BASE: '1m',
  };
  /** Runs `fn` on the identity service of the folder, closed again before the CLI opens it. */
  const withAuth = async (fn: (auth: Awaited<ReturnType<typeof createAuthService>>) => Promise<void>) => {
    const local = await openLocalStorage({ env, flag: () => undefined } as unknown as CommandContext);
    const auth = await createAuthService({
      db: local.db,
      clock: { now: () => Date.now() },
      log,
      dataDir: local.dataDir,
      config: local.config.auth,
    });
    try {
      await fn(auth);
    } finally {
      auth.close();
      await local.close();
    }
  };
  return { env, withAuth, [Symbol.asyncDispose]: () => rm(home, { recursive: true, force: true }) };
}

void describe('passwords from standard input', () => {
  void it('refuses an empty one before asking the server, naming where a password comes from', async () => {
    for (const argv of [
      ['users', 'add', 'dave', '--password-stdin'],
      ['users', 'add', 'dave'],
      ['login', '--username', 'dave', '--password-stdin'],
    ]) {
      let err = '';
      const stderr = new PassThrough();
      stderr.on('data', (c: Buffer) => {
        err += c.toString();
      });
      // No server listens there: the command must stop before calling it.
      const code = await runCli(argv, identityCommands, {
        env: { GATEHOUSE_URL: 'http://127.0.0.1:1', GATEHOUSE_TOKEN: 'token', HOME: '/nonexistent' },
        stdout: new PassThrough(),
        stderr,
        stdin: Readable.from([]),
      });
      assert.equal(code, 2, `${argv.join(' ')}: ${err}`);
      assert.match(err, /No password on standard input/);
    }
  });
});

void describe('gatehouse users unlock', () => {
  void it('clears the locks of every address and the account-wide backoff on the data folder', async () => {
    await using folder = await dataFolder();
    await folder.withAuth(async (auth) => {
      await auth.users.create({ username: 'alice', password: PASSWORD }, 'test');
      for (const ip of ['203.0.113.1', '203.0.113.2'])
        await assert.rejects(auth.login('alice', 'wrong password!!', ip), {
          code: 'GW_ERR_AUTH_INVALID_CREDENTIALS',
        });
      await assert.rejects(auth.login('alice', PASSWORD, '198.51.100.1'), { code: 'GW_ERR_AUTH_LOCKED' });
    });
    const run = await runCliCaptured(['users', 'unlock', 'alice', '--json'], identityCommands, folder.env);
    assert.equal(run.code, 0, run.err);
    const result = JSON.parse(run.out) as Record<string, unknown>;
    assert.equal(result['username'], 'alice');
    assert.equal(result['addresses'], 2);
    assert.equal(result['accountBackoff'], true);
    await folder.withAuth(async (auth) => {
      await auth.login('alice', PASSWORD, '203.0.113.1');
      await auth.login('alice', PASSWORD, '198.51.100.1');
    });
    const again = await runCliCaptured(['users', 'unlock', 'alice'], identityCommands, folder.env);
    assert.equal(again.code, 0, again.err);
    assert.match(again.out, /Unlocked alice \(u_\w+\): it had no failed logins/);
  });

  void it('names an unknown user, also in JSON', async () => {
    await using folder = await dataFolder();
    // A server's data folder: its database exists.
    await folder.withAuth(async () => undefined);
    const run = await runCliCaptured(['users', 'unlock', 'nobody', '--json'], identityCommands, folder.env);
    assert.equal(run.code, 1);
    assert.match(run.err, /No user "nobody"/);
    const body = JSON.parse(run.out) as { error: { code: string } };
    assert.equal(body.error.code, 'GW_ERR_USER_NOT_FOUND');
  });

  void it('creates no database in a folder without one, and does not ignore a named server', async () => {
    await using folder = await dataFolder();
    const home = folder.env.GATEHOUSE_HOME;
    const empty = await runCliCaptured(['users', 'unlock', 'alice'], identityCommands, folder.env);
    assert.equal(empty.code, 2);
    assert.match(empty.err, /No Gatehouse database ".*gatehouse\.db" in the data folder/);
    assert.deepEqual(await readdir(home).catch(() => []), []);
    const named = await runCliCaptured(
      ['users', 'unlock', 'alice', '--server', 'http://127.0.0.1:1'],
      identityCommands,
      folder.env,
    );
    assert.equal(named.code, 2);
    assert.match(named.err, /add --api to unlock through the server at http:\/\/127\.0\.0\.1:1/);
  });

  void it('says the configured database does not answer, not that it holds no Gatehouse data', async () => {
    await using folder = await dataFolder();
    const env = {
      ...folder.env,
      GATEHOUSE_STORAGE_URL: `postgres://gatehouse@127.0.0.1:${await closedPort()}/gatehouse`,
      GATEHOUSE_STORAGE_CONNECT_TIMEOUT: '1s',
    };
    const run = await runCliCaptured(['users', 'unlock', 'alice', '--json'], identityCommands, env);
    assert.equal(run.code, 1, run.err);
    assert.doesNotMatch(run.err, /holds no Gatehouse data/);
    assert.equal(
      (JSON.parse(run.out) as { error: { code: string } }).error.code,
      'GW_ERR_STORAGE_UNAVAILABLE',
    );
  });
});
