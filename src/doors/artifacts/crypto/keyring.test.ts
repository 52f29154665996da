import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { createKeyring, parseMasterKey } from './keyring.ts';

const k1 = { id: 'k1', key: randomBytes(32) };
const k2 = { id: 'k2', key: randomBytes(32) };
const isUnavailable = (error: unknown) =>
  (error as { code?: string }).code === 'GW_ERR_ARTIFACTS_KEY_UNAVAILABLE';

void describe('keyring', () => {
  void it('wraps a fresh data key and unwraps it', () => {
    const ring = createKeyring([k1], 'k1');
    const { key, wrapped } = ring.newDataKey();
    assert.equal(wrapped.keyId, 'k1');
    assert.deepEqual(ring.unwrap(wrapped), key);
  });

  void it('rotation rewraps under the new active key and keeps the data key', () => {
    const old = createKeyring([k1], 'k1');
    const { key, wrapped } = old.newDataKey();
    const rotated = createKeyring([k1, k2], 'k2');
    const rewrapped = rotated.rewrap(wrapped);
    assert.equal(rewrapped.keyId, 'k2');
    assert.deepEqual(rotated.unwrap(rewrapped), key);
    assert.equal(rotated.rewrap(rewrapped), rewrapped);
    // After rotation the old master key can be retired.
    assert.deepEqual(createKeyring([k2], 'k2').unwrap(rewrapped), key);
  });

  void it('refuses unknown key ids, relabelled and tampered wrapped keys', () => {
    const ring = createKeyring([k1, k2], 'k1');
    const { wrapped } = ring.newDataKey();
    assert.throws(() => createKeyring([k2], 'k2').unwrap(wrapped), isUnavailable);
    assert.throws(() => ring.unwrap({ keyId: 'k2', wrapped: wrapped.wrapped }), isUnavailable);
    const flipped = Buffer.from(wrapped.wrapped);
    flipped[20] = (flipped[20] ?? 0) ^ 1;
    assert.throws(() => ring.unwrap({ keyId: 'k1', wrapped: flipped }), isUnavailable);
    assert.throws(() => ring.unwrap({ keyId: 'k1', wrapped: Buffer.alloc(10) }), isUnavailable);
  });

  void it('validates configuration', () => {
    assert.throws(() => createKeyring([{ id: 'x', key: randomBytes(16) }], 'x'), RangeError);
    assert.throws(() => createKeyring([k1, k1], 'k1'), RangeError);
    assert.throws(() => createKeyring([k1], 'nope'), RangeError);
  });

  void it('parses raw, hex and base64 key material and refuses other lengths', () => {
    const raw = randomBytes(32);
    assert.deepEqual(parseMasterKey('a', raw).key, raw);
    assert.deepEqual(parseMasterKey('a', raw.toString('hex')).key, raw);
    assert.deepEqual(parseMasterKey('a', `${raw.toString('base64')}\n`).key, raw);
    assert.throws(() => parseMasterKey('a', 'short'), RangeError);
    assert.throws(() => parseMasterKey('a', randomBytes(31).toString('base64')), RangeError);
  });
});
