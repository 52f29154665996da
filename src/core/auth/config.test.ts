import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigValidationError, describeSchema, loadConfig, object, walkSchema } from '#core/config';
import { rbacConfigSchema } from '#core/rbac';
import { authConfigSchema } from './config.ts';

const root = object({ auth: authConfigSchema, rbac: rbacConfigSchema }, 'Test root');

void describe('auth configuration', () => {
  void it('has secure defaults', async () => {
    const { config } = await loadConfig(root, {});
    assert.equal(config.auth.accessTokenTtl, 15 * 60_000);
    assert.equal(config.auth.refreshTokenTtl, 7 * 86_400_000);
    assert.deepEqual(config.auth.password.scrypt, { ln: 17, r: 8, p: 1 });
    assert.equal(config.auth.password.minLength, 12);
    assert.equal(config.auth.adminPassword, undefined);
    assert.deepEqual(config.rbac.bindings, []);
  });

  void it('takes the admin password from GATEHOUSE_ADMIN_PASSWORD and keeps it secret', async () => {
    const { config } = await loadConfig(root, { env: { GATEHOUSE_ADMIN_PASSWORD: 'from-the-environment' } });
    assert.equal(config.auth.adminPassword, 'from-the-environment');
    await assert.rejects(
      loadConfig(root, { env: { GATEHOUSE_ADMIN_PASSWORD: 'short' } }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigValidationError);
        assert.equal(error.issues[0]?.path, 'auth.adminPassword');
        assert.equal(error.issues[0]?.value, '[redacted]');
        assert.equal(error.message.includes('short'), false);
        return true;
      },
    );
  });

  void it('refuses two external issuers with one name or one issuer, and one with the own issuer', async () => {
    // Principals of an issuer are "jwt:<name>#<sub>": under one name, a user of one identity
    // provider would get the bindings granted to the same subject of the other.
    const text = [
      'auth:',
      '  jwks:',
      '    - { name: corp, url: "https://idp-a.example.test/jwks", issuer: "https://idp-a.example.test" }',
      '    - { name: corp, url: "https://idp-b.example.test/jwks", issuer: "https://idp-b.example.test" }',
      '    - { name: other, url: "https://idp-c.example.test/jwks", issuer: "https://idp-a.example.test" }',
      '    - { name: own, url: "https://idp-d.example.test/jwks", issuer: gatehouse }',
    ].join('\n');
    await assert.rejects(loadConfig(root, { text }), (error: unknown) => {
      assert.ok(error instanceof ConfigValidationError);
      assert.deepEqual(
        error.issues.map((i) => [i.path, i.expected]),
        [
          ['auth.jwks[1].name', 'a name no other issuer has ("corp" is the name of auth.jwks[0])'],
          [
            'auth.jwks[2].issuer',
            'an issuer no other entry has ("https://idp-a.example.test" is auth.jwks[0]\'s)',
          ],
          ['auth.jwks[3].issuer', 'another issuer than auth.issuer "gatehouse" (the tokens Gatehouse signs)'],
        ],
      );
      return true;
    });
    const distinct = text.replaceAll('name: corp, url: "https://idp-b', 'name: corp-b, url: "https://idp-b');
    await loadConfig(root, {
      text: distinct.split('\n').slice(0, 4).join('\n'),
    });
  });

  void it('reports every bad key at once with its path', async () => {
    const text = [
      'auth:',
      '  accessTokenTtl: 1s',
      '  password: { minLength: 4, scrypt: { ln: 40 } }',
      '  lockout: { maxFailures: 0 }',
      '  jwks: [{ name: Corp, url: "ftp://x", issuer: "" }]',
    ].join('\n');
    await assert.rejects(loadConfig(root, { text }), (error: unknown) => {
      assert.ok(error instanceof ConfigValidationError);
      const paths = error.issues.map((i) => i.path);
      for (const path of [
        'auth.accessTokenTtl',
        'auth.password.minLength',
        'auth.password.scrypt.ln',
        'auth.lockout.maxFailures',
        'auth.jwks[0].name',
        'auth.jwks[0].url',
        'auth.jwks[0].issuer',
      ]) {
        assert.ok(paths.includes(path), `${path} in ${paths.join(', ')}`);
      }
      return true;
    });
  });

  void it('describes every key and marks rbac.bindings dynamic', () => {
    walkSchema(root, (path, schema) => {
      assert.ok(schema.meta.description.length > 0, path.join('.'));
    });
    const keys = describeSchema(root);
    assert.ok(keys.some((k) => k.path === 'rbac.bindings' && k.dynamic === true));
  });
});
