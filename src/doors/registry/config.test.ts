import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigValidationError, validateRaw } from '#core/config';
import { checksumDbUplink, registryConfigSchema } from './config.ts';

const parse = (go: Record<string, unknown>) => validateRaw(registryConfigSchema, { go }, 'test');

void describe('registry.go.checksumDb', () => {
  void it('takes the connection keys of an uplink, and refuses the keys only a package registry has', () => {
    const ok = parse({ checksumDb: { name: 'sumdb', url: 'https://sumdb.example.test/', retries: 1 } });
    assert.equal(ok.go.checksumDb?.retries, 1);
    assert.ok(ok.go.checksumDb !== undefined);
    const uplink = checksumDbUplink(ok.go.checksumDb);
    assert.deepEqual([uplink.fileOrigins, uplink.packages, uplink.tokenRealmOrigins], [[], ['*'], []]);
    for (const key of ['packages', 'fileOrigins', 'jsonUrl', 'tokenRealmOrigins']) {
      assert.throws(
        () => parse({ checksumDb: { name: 'sumdb', url: 'https://sumdb.example.test/', [key]: [] } }),
        (error: unknown) =>
          error instanceof ConfigValidationError &&
          error.issues.some(
            (i) => i.path === `registry.go.checksumDb.${key}` || i.path === `go.checksumDb.${key}`,
          ),
        key,
      );
    }
  });
});

const refused = (go: Record<string, unknown>, why: RegExp) =>
  assert.throws(
    () => parse(go),
    (error: unknown) =>
      error instanceof ConfigValidationError &&
      error.issues.some((i) => i.path.endsWith('go.checksumDbKey') && why.test(i.expected)),
  );

void describe('registry.go.checksumDbKey', () => {
  const db = { name: 'sumdb', url: 'https://sumdb.example.test/' };
  void it('is refused at validation without checksumDb, or when it is not a real key', () => {
    refused(
      { checksumDbKey: 'sum.example.test+1a2b3c4d+AXpRvZaxuXZp0QZ8k7XGdOyRY/JquUsBL0HiGmO1h9rZ' },
      /without `checksumDb`/,
    );
    refused(
      {
        checksumDb: db,
        checksumDbKey: 'sum.example.test+1a2b3c4d+AXpRvZaxuXZp0QZ8k7XGdOyRY/JquUsBL0HiGmO1h9rZ',
      },
      /key hash|not a base64/,
    );
  });
});
