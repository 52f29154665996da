import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { hashPassword, needsRehash, parsePasswordHash, randomPassword, verifyPassword } from './password.ts';

const FAST = { ln: 10, r: 8, p: 1 } as const;

void describe('password hashing', () => {
  void it('stores parameters and salt in a self-describing string', async () => {
    const hash = await hashPassword('correct horse battery', FAST);
    assert.match(hash, /^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    assert.notEqual(hash, await hashPassword('correct horse battery', FAST), 'salted');
    assert.deepEqual(parsePasswordHash(hash)?.params, FAST);
  });

  void it('verifies the right password and rejects others', async () => {
    const hash = await hashPassword('correct horse battery', FAST);
    assert.equal(await verifyPassword('correct horse battery', hash), true);
    assert.equal(await verifyPassword('correct horse batterY', hash), false);
    assert.equal(await verifyPassword('', hash), false);
    // Unicode forms that look the same verify the same (NFKC).
    const accented = await hashPassword('caf\u00e9-password-1', FAST);
    assert.equal(await verifyPassword('cafe\u0301-password-1', accented), true);
  });

  void it('rejects tampered or foreign hashes without throwing', async () => {
    const hash = await hashPassword('correct horse battery', FAST);
    const flipped = hash.slice(0, -2) + (hash.at(-2) === 'A' ? 'B' : 'A') + hash.at(-1);
    assert.equal(await verifyPassword('correct horse battery', flipped), false);
    for (const bad of ['', 'plain', '$2b$10$abcdefghijklmnopqrstuv', hash.replace('ln=10', 'ln=40')]) {
      assert.equal(await verifyPassword('correct horse battery', bad), false, bad);
    }
  });

  void it('asks for a rehash when parameters change', async () => {
    const hash = await hashPassword('correct horse battery', FAST);
    assert.equal(needsRehash(hash, FAST), false);
    assert.equal(needsRehash(hash, { ...FAST, ln: 11 }), true);
    assert.equal(needsRehash(hash, { ...FAST, r: 16 }), true);
    assert.equal(needsRehash('garbage', FAST), true);
  });

  void it('never parses arbitrary text into out-of-bounds parameters (property)', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        const parsed = parsePasswordHash(text);
        return (
          parsed === undefined || (parsed.params.ln <= 24 && parsed.params.r <= 32 && parsed.params.p <= 16)
        );
      }),
    );
  });

  void it('generates random passwords of the asked length', () => {
    const a = randomPassword();
    assert.equal(a.length, 24);
    assert.match(a, /^[A-HJ-NP-Za-km-z2-9]{24}$/);
    assert.notEqual(a, randomPassword());
  });
});
