import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createLogger } from '#core/log';
import { createAccessTokens } from './access-tokens.ts';
import { openKeyRing } from './signing-keys.ts';
import {
  hs256Token,
  manualClock,
  temporaryDir,
  unsignedToken,
  withPayload,
  rejectsWith,
} from './test-support.ts';

const log = createLogger({ level: 'silent' });
const MINUTE = 60_000;

async function setup(dir: string, clock = manualClock()) {
  const keys = await openKeyRing({
    dir,
    clock,
    log,
    rotateAfter: 30 * 24 * 60 * MINUTE,
    retainFor: 15 * MINUTE,
  });
  const tokens = createAccessTokens({
    keys,
    clock,
    issuer: 'gatehouse',
    audience: 'gatehouse',
    ttlMs: 15 * MINUTE,
  });
  return { keys, tokens, clock };
}

const subject = {
  userId: 'u-1',
  username: 'alice',
  bindings: [{ role: 'publisher', namespace: 'team-a' }],
  sessionId: 'fam-1',
} as const;

void describe('access tokens', () => {
  void it('signs EdDSA tokens that verify, with keys stored as 0600 files', async () => {
    await using dir = await temporaryDir('keys');
    const { tokens, keys } = await setup(dir.path);
    const { token, expiresAt } = await tokens.issue(subject);
    const [header] = token.split('.') as [string];
    assert.deepEqual(JSON.parse(Buffer.from(header, 'base64url').toString()), {
      alg: 'EdDSA',
      kid: keys.current().kid,
      typ: 'at+jwt',
    });
    const claims = await tokens.verify(token);
    assert.equal(claims.userId, 'u-1');
    assert.equal(claims.username, 'alice');
    assert.deepEqual(claims.bindings, subject.bindings);
    assert.equal(claims.expiresAt, expiresAt);
    const files = await readdir(dir.path);
    assert.equal(files.length, 1);
    assert.equal((await stat(join(dir.path, files[0] as string))).mode & 0o777, 0o600);
    const jwks = keys.jwks();
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0]?.kty, 'OKP');
    assert.equal(jwks.keys[0]?.crv, 'Ed25519');
    assert.equal('d' in (jwks.keys[0] ?? {}), false, 'no private part in the JWKS');
  });

  void it('reuses keys across restarts and rotates: old tokens verify until the retention ends', async () => {
    await using dir = await temporaryDir('rotate');
    const clock = manualClock();
    const first = await setup(dir.path, clock);
    const old = await first.tokens.issue(subject);
    const restarted = await setup(dir.path, clock);
    assert.equal(restarted.keys.current().kid, first.keys.current().kid);
    const next = await restarted.keys.rotate();
    assert.notEqual(next.kid, first.keys.current().kid);
    assert.equal(restarted.keys.jwks().keys.length, 2);
    const fresh = await restarted.tokens.issue(subject);
    assert.match(fresh.token, /./);
    await restarted.tokens.verify(old.token);
    clock.advance(16 * MINUTE);
    // A third restart prunes the key whose successor is older than the access token lifetime.
    const later = await setup(dir.path, clock);
    assert.equal(later.keys.jwks().keys.length, 1);
    // The token had expired anyway; its key is gone now.
    await rejectsWith(later.tokens.verify(old.token), 'GW_ERR_AUTH_TOKEN_INVALID', /unknown key/);
    await later.tokens.verify((await later.tokens.issue(subject)).token);
  });

  void it('rotates the signing key of a long-running server when it is older than the rotation age', async () => {
    await using dir = await temporaryDir('age');
    const { tokens, keys, clock } = await setup(dir.path);
    const first = keys.current().kid;
    const early = await tokens.issue(subject);
    clock.advance(30 * 24 * 60 * MINUTE);
    const [a, b] = await Promise.all([tokens.issue(subject), tokens.issue(subject)]);
    const kidOf = (t: string) =>
      (JSON.parse(Buffer.from(t.split('.')[0] ?? '', 'base64url').toString()) as { kid: string }).kid;
    assert.notEqual(kidOf(a.token), first);
    assert.equal(kidOf(a.token), kidOf(b.token), 'one rotation for concurrent issuers');
    assert.equal(keys.jwks().keys.length, 2);
    await rejectsWith(tokens.verify(early.token), 'GW_ERR_AUTH_TOKEN_EXPIRED');
  });

  void it('rejects expired and not-yet-valid tokens', async () => {
    await using dir = await temporaryDir('exp');
    const { tokens, clock } = await setup(dir.path);
    const { token } = await tokens.issue(subject);
    clock.advance(15 * MINUTE + 10_000);
    await rejectsWith(tokens.verify(token), 'GW_ERR_AUTH_TOKEN_EXPIRED', /expired/);
    clock.advance(-(15 * MINUTE + 10_000) - 60_000);
    await rejectsWith(tokens.verify(token), 'GW_ERR_AUTH_TOKEN_EXPIRED', /not valid yet/);
  });

  void it('rejects forged, tampered and foreign tokens', async () => {
    await using dir = await temporaryDir('forged');
    const { tokens, keys } = await setup(dir.path);
    const { token } = await tokens.issue(subject);
    const kid = keys.current().kid;
    const payload = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as object;
    // Escalating the bindings breaks the signature.
    await rejectsWith(
      tokens.verify(withPayload(token, (p) => (p['bindings'] = [{ role: 'admin', ns: '*' }]))),
      'GW_ERR_AUTH_TOKEN_INVALID',
      /signature/,
    );
    await rejectsWith(
      tokens.verify(unsignedToken({ alg: 'none', kid, typ: 'at+jwt' }, payload)),
      'GW_ERR_AUTH_TOKEN_INVALID',
    );
    // Key confusion: HMAC with the public key as the secret.
    const publicX = keys.current().publicJwk.x as string;
    await rejectsWith(
      tokens.verify(hs256Token({ alg: 'HS256', kid, typ: 'at+jwt' }, payload, publicX)),
      'GW_ERR_AUTH_TOKEN_INVALID',
      /algorithm/,
    );
    await rejectsWith(tokens.verify('not.a.jwt'), 'GW_ERR_AUTH_TOKEN_INVALID');
    await rejectsWith(tokens.verify(''), 'GW_ERR_AUTH_TOKEN_INVALID');
    // A token from another Gatehouse (other key ring, same claims) is refused.
    await using other = await temporaryDir('other');
    const foreign = await (await setup(other.path)).tokens.issue(subject);
    await rejectsWith(tokens.verify(foreign.token), 'GW_ERR_AUTH_TOKEN_INVALID', /unknown key/);
    // Wrong issuer or audience, signed with our real key.
    const clock = manualClock();
    const wrongIss = createAccessTokens({
      keys,
      clock,
      issuer: 'evil',
      audience: 'gatehouse',
      ttlMs: MINUTE,
    });
    await rejectsWith(
      tokens.verify((await wrongIss.issue(subject)).token),
      'GW_ERR_AUTH_TOKEN_INVALID',
      /"iss"/,
    );
    const wrongAud = createAccessTokens({ keys, clock, issuer: 'gatehouse', audience: 'kv', ttlMs: MINUTE });
    await rejectsWith(
      tokens.verify((await wrongAud.issue(subject)).token),
      'GW_ERR_AUTH_TOKEN_INVALID',
      /"aud"/,
    );
  });
});
