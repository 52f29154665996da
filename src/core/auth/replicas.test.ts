import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '#core/config';
import { createLogger } from '#core/log';
import { createSqliteDatabase } from '#core/storage';
import { authConfigSchema } from './config.ts';
import { createAuthService } from './service.ts';
import { manualClock, rejectsWith, temporaryDir } from './test-support.ts';

const log = createLogger({ level: 'silent' });
const PASSWORD = 'correct horse battery staple';
const MINUTE = 60_000;

void describe('several replicas on one database', () => {
  void it('verify each other’s access tokens through the shared public keys', async () => {
    await using dirA = await temporaryDir('replica-a');
    await using dirB = await temporaryDir('replica-b');
    const db = await createSqliteDatabase({ file: ':memory:' });
    const clock = manualClock();
    const config = (await loadConfig(authConfigSchema, { text: 'password: { scrypt: { ln: 10 } }\n' }))
      .config;
    const a = await createAuthService({ db, clock, log, dataDir: dirA.path, config });
    const b = await createAuthService({ db, clock, log, dataDir: dirB.path, config });
    try {
      await a.ensureAdmin({ password: PASSWORD });
      const fromA = await a.login('admin', PASSWORD);
      const fromB = await b.login('admin', PASSWORD);
      assert.equal((await b.authenticate({ bearer: fromA.accessToken })).name, 'admin');
      assert.equal((await a.authenticate({ bearer: fromB.accessToken })).name, 'admin');
      assert.equal((await a.jwks()).keys.length, 2);
      assert.deepEqual(await a.jwks(), await b.jwks());
      // A rotates: its old key keeps verifying on B for one access-token lifetime, then not.
      const before = await a.login('admin', PASSWORD);
      await a.rotateSigningKey();
      await b.authenticate({ bearer: before.accessToken });
      assert.equal((await b.jwks()).keys.length, 3);
      clock.advance(16 * MINUTE);
      assert.equal((await b.jwks()).keys.length, 2, 'the retired key is no longer published');
      await rejectsWith(b.authenticate({ bearer: before.accessToken }), 'GW_ERR_AUTH_TOKEN_EXPIRED');
      const after = await a.login('admin', PASSWORD);
      await b.authenticate({ bearer: after.accessToken });
      // A token with a kid no replica published is refused without a match.
      const [, payload, signature] = after.accessToken.split('.');
      const header = Buffer.from(
        JSON.stringify({ alg: 'EdDSA', kid: 'unknown-kid', typ: 'at+jwt' }),
      ).toString('base64url');
      await rejectsWith(
        b.authenticate({ bearer: `${header}.${payload}.${signature}` }),
        'GW_ERR_AUTH_TOKEN_INVALID',
        /unknown key/,
      );
    } finally {
      a.close();
      b.close();
      await db.close();
    }
  });
});
