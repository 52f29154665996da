import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ConfigValidationError, validateRaw } from '#core/config';
import { artifactsConfigSchema } from './config.ts';

void it('defaults validate and sizes become bytes', () => {
  const config = validateRaw(artifactsConfigSchema, {}, 'test');
  assert.equal(config.encryption.segmentSize, 256 * 1024);
  assert.equal(config.blobStore.kind, 'fs');
  assert.equal(config.policy.rules[0]?.type, 'vulnerability');
  assert.equal(config.scan.timeout, 5 * 60_000);
  assert.equal(validateRaw(artifactsConfigSchema, { scan: { timeout: '30s' } }, 'test').scan.timeout, 30_000);
});

void it('refuses a segment size outside 64KiB..1MiB and names the key', () => {
  assert.throws(
    () => validateRaw(artifactsConfigSchema, { encryption: { segmentSize: '2MiB' } }, 'test'),
    (error: unknown) =>
      error instanceof ConfigValidationError && /encryption\.segmentSize/.test(error.message),
  );
});
