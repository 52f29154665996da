import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { loadConfig } from '#core/config';
import { createLogger } from '#core/log';
import { authorize } from '#core/rbac';
import { createSqliteDatabase } from '#core/storage';
import { authConfigSchema } from './config.ts';
import { createAuthService } from './service.ts';
import { manualClock, rejectsWith, temporaryDir } from './test-support.ts';

const log = createLogger({ level: 'silent' });

void describe('authenticate dispatch', () => {
  void it('routes external JWTs, client certificates and API keys to their validators', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
    const server = createServer((_req, res) => res.end(JSON.stringify({ keys: [jwk] })));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    await using dir = await temporaryDir('dispatch');
    const db = await createSqliteDatabase({ file: ':memory:' });
    const clock = manualClock();
    const text = [
      'password: { scrypt: { ln: 10 } }',
      'jwks:',
      `  - { name: corp, url: "http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks", issuer: "https://idp.example.test", nameClaim: email }`,
      'mtls:',
      '  rules:',
      '    - { match: "SAN:URI:spiffe://example.test/ns/*/sa/*", principal: "svc:$1/$2", bindings: [{ role: reader, namespace: "$1" }] }',
    ].join('\n');
    const config = (await loadConfig(authConfigSchema, { text })).config;
    const auth = await createAuthService({ db, clock, log, dataDir: dir.path, config });
    try {
      const token = await new SignJWT({ email: 'alice@example.test' })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer('https://idp.example.test')
        .setAudience('gatehouse')
        .setSubject('alice')
        .setExpirationTime(Math.floor(clock.now() / 1000) + 60)
        .sign(privateKey);
      const external = await auth.authenticate({ bearer: token, clientIp: '127.0.0.1' });
      assert.equal(external.id, 'jwt:corp#alice');
      assert.equal(external.name, 'alice@example.test');
      assert.deepEqual(external.bindings, [], 'no roles until an explicit binding exists');
      // A stored binding for the external subject applies on the next request.
      await auth.bindings.grant('jwt:corp#alice', { role: 'consumer', namespace: 'public' }, 'test');
      const bound = await auth.authenticate({ bearer: token });
      assert.equal(
        authorize(bound, 'artifacts:download', { type: 'artifact', namespace: 'public' }).allowed,
        true,
      );
      assert.equal(
        authorize(bound, 'artifacts:download', { type: 'artifact', namespace: 'other' }).allowed,
        false,
      );

      const certificate = {
        subject: 'CN=api',
        subjectAltNames: ['URI:spiffe://example.test/ns/orders/sa/api'],
        fingerprint256: 'AB:CD',
      };
      const service = await auth.authenticate({ certificate });
      assert.equal(service.id, 'cert:svc:orders/api');
      assert.equal(authorize(service, 'kv:read', { type: 'kv', namespace: 'orders' }).allowed, true);
      assert.equal(authorize(service, 'kv:write', { type: 'kv', namespace: 'orders' }).allowed, false);
      await rejectsWith(
        auth.authenticate({
          certificate: { ...certificate, subjectAltNames: ['URI:spiffe://example.test/other'] },
        }),
        'GW_ERR_AUTH_CERT_INVALID',
      );
      // An API key header and a bearer token together are refused, whichever of them is valid.
      await rejectsWith(auth.authenticate({ apiKey: 'gh_bad', bearer: token }), 'GW_ERR_AUTH_TOKEN_INVALID');
      await rejectsWith(auth.authenticate({ bearer: 'gh_0123456789abcdef_nope' }), 'GW_ERR_AUTH_KEY_INVALID');
    } finally {
      auth.close();
      await db.close();
      server.close();
    }
  });
});
