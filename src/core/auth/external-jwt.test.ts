import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type CryptoKey, exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from 'jose';
import { loadConfig } from '#core/config';
import { createLogger } from '#core/log';
import { authConfigSchema, type JwksConfig } from './config.ts';
import { createExternalValidator } from './external-jwt.ts';
import { hs256Token, manualClock, rejectsWith, unsignedToken, withPayload } from './test-support.ts';

const log = createLogger({ level: 'silent' });
const ISSUER = 'https://idp.example.test';

type Alg = 'RS256' | 'ES256' | 'EdDSA' | 'RS384';
interface TestKey {
  readonly alg: Alg;
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  readonly jwk: JWK;
}

async function makeKey(alg: Alg, kid: string): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { alg, kid, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

async function configFor(url: string, extra = ''): Promise<JwksConfig> {
  const text = `jwks:\n  - name: corp\n    url: "${url}"\n    issuer: "${ISSUER}"\n    rolesClaim: roles\n    bindings: [{ role: consumer, namespace: public }]\n${extra}`;
  const { config } = await loadConfig(authConfigSchema, { text });
  return config.jwks[0] as JwksConfig;
}

void describe('external JWT validation', () => {
  const clock = manualClock(Date.UTC(2026, 5, 1));
  const nowS = () => Math.floor(clock.now() / 1000);
  let served: JWK[] = [];
  let failing = false;
  let server: Server;
  let url: string;
  const keys: Record<string, TestKey> = {};

  before(async () => {
    for (const [alg, kid] of [
      ['RS256', 'rsa-1'],
      ['ES256', 'ec-1'],
      ['EdDSA', 'ed-1'],
      ['RS384', 'rsa384-1'],
      ['RS256', 'rsa-rotated'],
    ] as const) {
      keys[kid] = await makeKey(alg, kid);
    }
    served = ['rsa-1', 'ec-1', 'ed-1', 'rsa384-1'].map((kid) => (keys[kid] as TestKey).jwk);
    server = createServer((request, response) => {
      if (request.url === '/broken') {
        response.writeHead(503).end('down');
        return;
      }
      if (request.url === '/hang') return;
      if (request.url === '/huge') {
        response
          .writeHead(200, { 'content-type': 'application/json' })
          .end(`{"keys":[],"pad":"${'x'.repeat(600 * 1024)}"}`);
        return;
      }
      if (failing) {
        response.writeHead(502).end();
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: served }));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  const sign = (kid: string, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}) => {
    const key = keys[kid] as TestKey;
    const payload = {
      iss: ISSUER,
      aud: 'gatehouse',
      sub: 'alice',
      iat: nowS(),
      exp: nowS() + 300,
      roles: ['publisher:team-a', 'reader:*', 'root:x'],
      ...claims,
    };
    return new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid, ...header }).sign(key.privateKey);
  };

  void it('accepts RS256, ES256 and EdDSA tokens and maps claims to a principal', async () => {
    const validator = createExternalValidator(await configFor(`${url}/jwks`), clock, log);
    for (const kid of ['rsa-1', 'ec-1', 'ed-1']) {
      const principal = await validator.verify(await sign(kid));
      assert.equal(principal.id, 'jwt:corp#alice');
      assert.equal(principal.kind, 'token');
      // "reader:*" from the claim is ignored: "*" only comes from explicit configuration.
      assert.deepEqual(principal.bindings, [
        { role: 'consumer', namespace: 'public' },
        { role: 'publisher', namespace: 'team-a' },
      ]);
    }
    assert.equal(validator.keys.fetches, 1, 'the key set is cached');
  });

  void it('rejects alg none, HS/RS key confusion, disallowed algorithms and a missing kid', async () => {
    const validator = createExternalValidator(await configFor(`${url}/jwks`), clock, log);
    const payload = { iss: ISSUER, aud: 'gatehouse', sub: 'alice', exp: nowS() + 300, iat: nowS() };
    await rejectsWith(
      validator.verify(unsignedToken({ alg: 'none', kid: 'rsa-1' }, payload)),
      'GW_ERR_AUTH_TOKEN_INVALID',
    );
    const pem = await exportSPKI((keys['rsa-1'] as TestKey).publicKey);
    await rejectsWith(
      validator.verify(hs256Token({ alg: 'HS256', kid: 'rsa-1', typ: 'JWT' }, payload, pem)),
      'GW_ERR_AUTH_TOKEN_INVALID',
      /algorithm that is not allowed/,
    );
    await rejectsWith(validator.verify(await sign('rsa384-1')), 'GW_ERR_AUTH_TOKEN_INVALID', /not allowed/);
    const noKid = await new SignJWT(payload)
      .setProtectedHeader({ alg: 'RS256' })
      .sign((keys['rsa-1'] as TestKey).privateKey);
    await rejectsWith(validator.verify(noKid), 'GW_ERR_AUTH_TOKEN_INVALID', /no "kid"/);
    // A token signed by one key but labelled with another key's kid fails the signature.
    await rejectsWith(validator.verify(await sign('ec-1', {}, { kid: 'ed-1' })), 'GW_ERR_AUTH_TOKEN_INVALID');
    await rejectsWith(validator.verify('garbage'), 'GW_ERR_AUTH_TOKEN_INVALID');
  });

  void it('rejects wrong issuer or audience, tampered payloads and missing subjects', async () => {
    const validator = createExternalValidator(await configFor(`${url}/jwks`), clock, log);
    await rejectsWith(
      validator.verify(await sign('rsa-1', { iss: 'https://evil.test' })),
      'GW_ERR_AUTH_TOKEN_INVALID',
      /"iss"/,
    );
    await rejectsWith(
      validator.verify(await sign('rsa-1', { aud: 'other' })),
      'GW_ERR_AUTH_TOKEN_INVALID',
      /"aud"/,
    );
    const token = await sign('rsa-1');
    await rejectsWith(
      validator.verify(withPayload(token, (p) => (p['roles'] = ['admin:team-a']))),
      'GW_ERR_AUTH_TOKEN_INVALID',
      /signature/,
    );
    await rejectsWith(
      validator.verify(await sign('rsa-1', { sub: '' })),
      'GW_ERR_AUTH_TOKEN_INVALID',
      /"sub"/,
    );
  });

  void it('rejects expired, not-yet-valid and future-issued tokens beyond the clock tolerance', async () => {
    const validator = createExternalValidator(await configFor(`${url}/jwks`), clock, log);
    await rejectsWith(
      validator.verify(await sign('rsa-1', { exp: nowS() - 31 })),
      'GW_ERR_AUTH_TOKEN_EXPIRED',
      /expired/,
    );
    await validator.verify(await sign('rsa-1', { exp: nowS() - 10 }));
    await rejectsWith(
      validator.verify(await sign('rsa-1', { nbf: nowS() + 60 })),
      'GW_ERR_AUTH_TOKEN_EXPIRED',
      /not valid yet/,
    );
    await validator.verify(await sign('rsa-1', { nbf: nowS() + 10 }));
    await rejectsWith(
      validator.verify(await sign('rsa-1', { iat: nowS() + 3600 })),
      'GW_ERR_AUTH_TOKEN_INVALID',
      /issued in the future/,
    );
    await validator.verify(await sign('rsa-1', { iat: nowS() + 10 }));
    const noExp = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' })
      .setIssuer(ISSUER)
      .setAudience('gatehouse')
      .setSubject('alice')
      .sign((keys['rsa-1'] as TestKey).privateKey);
    await rejectsWith(validator.verify(noExp), 'GW_ERR_AUTH_TOKEN_INVALID', /"exp"/);
  });

  void it('refetches the key set once for an unknown kid, at most once per cooldown', async () => {
    const validator = createExternalValidator(await configFor(`${url}/jwks`), clock, log);
    await validator.verify(await sign('rsa-1'));
    assert.equal(validator.keys.fetches, 1);
    const rotated = await sign('rsa-rotated');
    clock.advance(31_000);
    await rejectsWith(validator.verify(rotated), 'GW_ERR_AUTH_TOKEN_INVALID', /unknown key/);
    assert.equal(validator.keys.fetches, 2, 'one refetch');
    for (let i = 0; i < 5; i++) {
      await rejectsWith(
        validator.verify(await sign('rsa-rotated', { jti: String(i) })),
        'GW_ERR_AUTH_TOKEN_INVALID',
      );
    }
    assert.equal(validator.keys.fetches, 2, 'no refetch inside the cooldown');
    served = [...served, (keys['rsa-rotated'] as TestKey).jwk];
    clock.advance(30_000);
    await validator.verify(await sign('rsa-rotated'));
    assert.equal(validator.keys.fetches, 3, 'the rotated key was found by one refetch');
  });

  void it('answers GW_ERR_AUTH_JWKS_UNAVAILABLE when the key set cannot be fetched', async () => {
    const broken = createExternalValidator(await configFor(`${url}/broken`), clock, log);
    await rejectsWith(broken.verify(await sign('rsa-1')), 'GW_ERR_AUTH_JWKS_UNAVAILABLE', /status 503/);
    const hanging = createExternalValidator(
      await configFor(`${url}/hang`, '    timeout: 200ms\n'),
      clock,
      log,
    );
    await rejectsWith(hanging.verify(await sign('rsa-1')), 'GW_ERR_AUTH_JWKS_UNAVAILABLE', /timed out/);
  });

  void it('bounds the key set size and the fetches while the issuer is down; serves stale keys meanwhile', async () => {
    const huge = createExternalValidator(await configFor(`${url}/huge`), clock, log);
    await rejectsWith(huge.verify(await sign('rsa-1')), 'GW_ERR_AUTH_JWKS_UNAVAILABLE', /exceeds/);

    failing = true;
    try {
      const down = createExternalValidator(await configFor(`${url}/jwks`), clock, log);
      for (let i = 0; i < 5; i++) {
        await rejectsWith(down.verify(await sign('rsa-1')), 'GW_ERR_AUTH_JWKS_UNAVAILABLE', /status 502/);
      }
      assert.equal(down.keys.fetches, 1, 'one fetch while the failure is fresh');
      clock.advance(5_000);
      failing = false;
      await down.verify(await sign('rsa-1'));
      assert.equal(down.keys.fetches, 2);
      // The cache expires while the issuer is down: the cached keys keep working.
      failing = true;
      clock.advance(11 * 60_000);
      await down.verify(await sign('rsa-1'));
      await down.verify(await sign('rsa-1'));
      assert.equal(down.keys.fetches, 3);
    } finally {
      failing = false;
    }
  });

  void it('refuses unsafe issuer configuration', async () => {
    await assert.rejects(configFor('http://idp.example.test/jwks'), /jwks\[0\]\.url/);
    await assert.rejects(configFor(`${url}/jwks`, '    algorithms: [HS256]\n'), /jwks\[0\]\.algorithms\[0\]/);
    await assert.rejects(configFor(`${url}/jwks`, '    algorithms: [none]\n'), /algorithms/);
  });
});
