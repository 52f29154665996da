import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { it } from 'node:test';
import fc from 'fast-check';
import { parseDerSignature, verifyDigestP256 } from './p256.ts';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;

void it('verifies what Node (OpenSSL) signs and refuses any change', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), (bytes, flip) => {
      const data = Buffer.from(bytes);
      const digest = createHash('sha256').update(data).digest();
      const signature = sign('sha256', data, privateKey);
      assert.equal(verifyDigestP256(publicKey, digest, signature), true);
      assert.equal(verifyDigestP256(other, digest, signature), false);
      const badDigest = Buffer.from(digest);
      badDigest[flip % 32] = (badDigest[flip % 32] ?? 0) ^ 1;
      assert.equal(verifyDigestP256(publicKey, badDigest, signature), false);
      const badSig = Buffer.from(signature);
      badSig[signature.length - 1 - (flip % 10)] = (badSig[signature.length - 1 - (flip % 10)] ?? 0) ^ 1;
      assert.equal(verifyDigestP256(publicKey, digest, badSig), false);
    }),
    { numRuns: 10 },
  );
});

void it('refuses malformed signatures and non-P-256 keys', () => {
  const digest = createHash('sha256').update('x').digest();
  for (const der of [
    Buffer.alloc(0),
    Buffer.from('3006020100020100', 'hex'),
    Buffer.from('300402010102', 'hex'),
  ]) {
    assert.equal(verifyDigestP256(publicKey, digest, der), false);
  }
  assert.equal(parseDerSignature(Buffer.from('3006020101020101', 'hex'))?.r, 1n);
  const ed = generateKeyPairSync('ed25519').publicKey;
  assert.equal(verifyDigestP256(ed, digest, sign('sha256', Buffer.from('x'), privateKey)), false);
});
