import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isGatewayError } from '#core/errors';
import {
  checkExpectedVersion,
  checkKey,
  checkMetadata,
  checkNamespace,
  checkPageSize,
  checkTtl,
  checkValue,
  decodePageToken,
  encodePageToken,
  isNamespace,
} from './validate.ts';

const invalid = (field: string) => (e: unknown) =>
  isGatewayError(e) &&
  e.kind === 'INVALID_ARGUMENT' &&
  e.details['field'] === field &&
  e.message.includes(`"${field}"`);

/** `n` arrays nested in one another. */
const nested = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;

void describe('kv validation', () => {
  void it('accepts exactly the DNS-safe namespaces of at most 63 characters', () => {
    for (const ok of ['ab', 'orders', 'a-b-9', `a${'b'.repeat(62)}`]) assert.equal(checkNamespace(ok), ok);
    for (const bad of [
      '',
      'a',
      'A1',
      '1ab',
      'ab-',
      '-ab',
      'a_b',
      'a.b',
      'ab\n',
      `a${'b'.repeat(63)}`,
      'ä1',
    ]) {
      assert.throws(() => checkNamespace(bad), invalid('namespace'), JSON.stringify(bad));
    }
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (s) => {
        const reference =
          s.length >= 2 && s.length <= 63 && /^[a-z][a-z0-9-]*[a-z0-9]$/.test(s) && !s.includes('\n');
        assert.equal(isNamespace(s), reference);
      }),
    );
  });

  void it('accepts keys of 1 to 1024 UTF-8 bytes without NUL and nothing else', () => {
    assert.equal(checkKey('é'.repeat(512)).length, 512);
    assert.throws(() => checkKey(`${'é'.repeat(512)}x`), invalid('key'));
    assert.throws(() => checkKey(''), invalid('key'));
    assert.equal(checkKey('', 'prefix', true), '');
    assert.throws(() => checkKey('a\0b'), invalid('key'));
    assert.throws(() => checkKey('\uD800'), invalid('key'));
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 1100 }), (s) => {
        const bytes = Buffer.byteLength(s);
        const valid = s.isWellFormed() && !s.includes('\0') && bytes >= 1 && bytes <= 1024;
        if (valid) assert.equal(checkKey(s), s);
        else assert.throws(() => checkKey(s), invalid('key'));
      }),
    );
  });

  void it('checks value size against the configured limit', () => {
    const limits = { maxValueBytes: 16, maxBatchItems: 10 };
    assert.equal(checkValue(new Uint8Array(16), limits).length, 16);
    assert.throws(() => checkValue(new Uint8Array(17), limits), invalid('value'));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.nat({ max: 40 }), (value, max) => {
        const bounded = { maxValueBytes: max, maxBatchItems: 10 };
        if (value.length <= max) assert.equal(checkValue(value, bounded), value);
        else assert.throws(() => checkValue(value, bounded, 'items[3].value'), invalid('items[3].value'));
      }),
    );
  });

  void it('accepts TTLs from 0 to 31536000 seconds', () => {
    assert.equal(checkTtl(0), 0);
    assert.equal(checkTtl(31_536_000), 31_536_000_000);
    assert.throws(() => checkTtl(31_536_001), invalid('ttl_seconds'));
    assert.throws(() => checkTtl(0, 'ttl_seconds', false), invalid('ttl_seconds'));
    fc.assert(
      fc.property(fc.nat({ max: 2 ** 32 - 1 }), (n) => {
        if (n <= 31_536_000) assert.equal(checkTtl(n), n * 1000);
        else assert.throws(() => checkTtl(n), invalid('ttl_seconds'));
      }),
    );
  });

  void it('accepts metadata only as JSON of at most 64 KiB', () => {
    assert.equal(checkMetadata(''), '');
    assert.equal(checkMetadata('{"a":[1,2]}'), '{"a":[1,2]}');
    for (const bad of ['{', 'undefined', "{'a':1}", `"${'x'.repeat(64 * 1024)}"`, '"\uDC00"']) {
      assert.throws(() => checkMetadata(bad), invalid('metadata'));
    }
    fc.assert(
      fc.property(fc.json(), (json) => {
        if (Buffer.byteLength(json) <= 64 * 1024) assert.equal(checkMetadata(json), json);
      }),
    );
    // Nested 64 levels is taken, 65 is not; brackets inside strings do not count.
    assert.equal(checkMetadata(nested(64)), nested(64));
    assert.throws(() => checkMetadata(nested(65)), /nested at most 64 levels/);
    assert.throws(() => checkMetadata(`{"a":${nested(20_000)}}`), /nested at most 64 levels/);
    const quoted = JSON.stringify({ s: `[{\\"${'['.repeat(500)}` });
    assert.equal(checkMetadata(quoted), quoted);
    fc.assert(
      fc.property(fc.string(), (s) => {
        let parses = true;
        try {
          JSON.parse(s);
        } catch {
          parses = false;
        }
        if (s !== '' && !parses) assert.throws(() => checkMetadata(s), invalid('metadata'));
      }),
    );
  });

  void it('bounds expected versions and page sizes', () => {
    assert.equal(checkExpectedVersion(undefined), undefined);
    assert.equal(checkExpectedVersion(7n), 7);
    assert.throws(() => checkExpectedVersion(2n ** 63n), invalid('expected_version'));
    assert.equal(checkPageSize(0), 100);
    assert.equal(checkPageSize(1000), 1000);
    assert.throws(() => checkPageSize(1001), invalid('page_size'));
    // Every uint64 a client can send, and every uint32 page size.
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (v) => {
        if (v <= BigInt(Number.MAX_SAFE_INTEGER)) assert.equal(checkExpectedVersion(v), Number(v));
        else assert.throws(() => checkExpectedVersion(v), invalid('expected_version'));
      }),
    );
    fc.assert(
      fc.property(fc.nat({ max: 2 ** 32 - 1 }), (n) => {
        if (n === 0) assert.equal(checkPageSize(n), 100);
        else if (n <= 1000) assert.equal(checkPageSize(n), n);
        else assert.throws(() => checkPageSize(n), invalid('page_size'));
      }),
    );
  });

  void it('round-trips page tokens and refuses forged ones', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 200 }), (k) => {
        if (!k.isWellFormed() || k.includes('\0')) return;
        assert.equal(decodePageToken(encodePageToken(k)), k);
      }),
    );
    assert.equal(decodePageToken(''), undefined);
    for (const bad of ['!!', 'a'.repeat(3000), '_w', encodePageToken('a\0b')]) {
      assert.throws(() => decodePageToken(bad), invalid('page_token'), bad);
    }
    fc.assert(
      fc.property(fc.string({ maxLength: 100 }), (s) => {
        try {
          decodePageToken(s);
        } catch (e) {
          assert.ok(invalid('page_token')(e));
        }
      }),
    );
  });
});
