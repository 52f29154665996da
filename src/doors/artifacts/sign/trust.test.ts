import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { buildBundle, keyHint, parseBundle, signStream } from './bundle.ts';
import { createTestPki } from './test-pki.ts';
import { compileTrust, evaluateTrust, type TrustPolicy } from './trust.ts';

const pki = createTestPki();
after(() => pki.close());

async function* once(data: Buffer): AsyncGenerator<Buffer> {
  yield data;
}

const data = randomBytes(10_000);
const sha = createHash('sha256').update(data).digest('hex');
const signer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pubPem = signer.publicKey.export({ format: 'pem', type: 'spki' }).toString();
const policy = (p: Partial<TrustPolicy>): TrustPolicy => ({
  mode: 'require',
  keys: [],
  roots: [],
  subjects: [],
  ...p,
});
const isInvalid = (e: unknown) => (e as { code?: string }).code === 'GW_ERR_ARTIFACTS_SIGNATURE_INVALID';

void describe('signatures and the trust policy', () => {
  void it('a key bundle verifies with openssl, an independent implementation, over the artifact bytes', async () => {
    const bundle = await signStream(once(data), signer.privateKey, { hint: keyHint(signer.publicKey) });
    assert.equal(bundle.mediaType, 'application/vnd.dev.sigstore.bundle.v0.3+json');
    assert.equal(Buffer.from(bundle.messageSignature.messageDigest.digest, 'base64').toString('hex'), sha);
    writeFileSync(join(pki.dir, 'artifact.bin'), data);
    writeFileSync(join(pki.dir, 'sig.der'), Buffer.from(bundle.messageSignature.signature, 'base64'));
    writeFileSync(join(pki.dir, 'pub.pem'), pubPem);
    const out = execFileSync(
      'openssl',
      ['dgst', '-sha256', '-verify', 'pub.pem', '-signature', 'sig.der', 'artifact.bin'],
      { cwd: pki.dir, encoding: 'utf8' },
    );
    assert.match(out, /Verified OK/);
    const trust = compileTrust(policy({ keys: [{ id: 'release', publicKey: pubPem }] }));
    const verdict = evaluateTrust(trust, sha, [parseBundle(JSON.parse(JSON.stringify(bundle)))], Date.now());
    assert.deepEqual([verdict.trusted, verdict.signer], [true, 'key:release']);
  });

  void it('fails closed: no signature, an untrusted key, another digest, a tampered signature', async () => {
    const trust = compileTrust(policy({ keys: [{ id: 'release', publicKey: pubPem }] }));
    const now = Date.now();
    assert.equal(evaluateTrust(trust, sha, [], now).trusted, false);
    const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const foreign = await signStream(once(data), stranger.privateKey, { hint: 'release' });
    assert.match(evaluateTrust(trust, sha, [foreign], now).reasons[0] ?? '', /any trusted key/);
    const good = await signStream(once(data), signer.privateKey, { hint: 'release' });
    assert.match(evaluateTrust(trust, 'f'.repeat(64), [good], now).reasons[0] ?? '', /different digest/);
    const sig = Buffer.from(good.messageSignature.signature, 'base64');
    sig[sig.length - 1] = (sig[sig.length - 1] ?? 0) ^ 1;
    const tampered = {
      ...good,
      messageSignature: { ...good.messageSignature, signature: sig.toString('base64') },
    };
    assert.equal(evaluateTrust(trust, sha, [tampered], now).trusted, false);
    assert.equal(evaluateTrust(compileTrust(policy({ mode: 'off' })), sha, [], now).trusted, true);
  });

  void it('validates x509 code-signing certificates against the roots, validity, EKU and subject', async () => {
    // A minute ahead: openssl stamps notBefore with the current second.
    const now = Date.now() + 60_000;
    const trust = compileTrust(policy({ roots: [pki.rootPem], subjects: ['*@example.test'] }));
    const sign = async (leaf: { keyPem: string; certPem: string }) =>
      signStream(once(data), createPrivateKey(leaf.keyPem), {
        certificate: new X509Certificate(leaf.certPem),
      });
    const ok = await sign(pki.leaf('builder@example.test'));
    assert.deepEqual(
      [evaluateTrust(trust, sha, [ok], now).trusted, evaluateTrust(trust, sha, [ok], now).signer],
      [true, 'cert:builder@example.test'],
    );
    // Expired: evaluated after the leaf's notAfter.
    assert.match(evaluateTrust(trust, sha, [ok], now + 8 * 86_400_000).reasons[0] ?? '', /validity period/);
    const otherCa = evaluateTrust(trust, sha, [await sign(pki.leaf('x@example.test', { ca: 'other' }))], now);
    assert.match(otherCa.reasons[0] ?? '', /trusted root/, JSON.stringify(otherCa));
    assert.match(
      evaluateTrust(trust, sha, [await sign(pki.leaf('y@example.test', { codeSigning: false }))], now)
        .reasons[0] ?? '',
      /code-signing/,
    );
    assert.match(
      evaluateTrust(trust, sha, [await sign(pki.leaf('mallory@evil.test'))], now).reasons[0] ?? '',
      /subject pattern/,
    );
    // A certificate bundle signed by a different key than the certificate's.
    const leaf = pki.leaf('z@example.test');
    const foreignSig = Buffer.from(
      (await signStream(once(data), signer.privateKey, { hint: 'x' })).messageSignature.signature,
      'base64',
    );
    const wrong = buildBundle(sha, foreignSig, { certificate: new X509Certificate(leaf.certPem) });
    assert.match(evaluateTrust(trust, sha, [wrong], now).reasons[0] ?? '', /does not verify/);
  });

  void it('refuses malformed bundles and bad policy material', () => {
    for (const bad of [
      null,
      {},
      { mediaType: 'x' },
      {
        mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
        messageSignature: { messageDigest: { algorithm: 'SHA2_256', digest: 'AA==' }, signature: 'AA==' },
        verificationMaterial: { publicKey: { hint: 'k' } },
      },
    ]) {
      assert.throws(() => parseBundle(bad), isInvalid);
    }
    const noMaterial = {
      mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      messageSignature: {
        messageDigest: { algorithm: 'SHA2_256', digest: Buffer.alloc(32).toString('base64') },
        signature: 'AA==',
      },
      verificationMaterial: { tlogEntries: [] },
    };
    assert.throws(() => parseBundle(noMaterial), isInvalid);
    assert.throws(() => compileTrust(policy({ keys: [{ id: 'k', publicKey: 'not pem' }] })), RangeError);
    assert.throws(() => compileTrust(policy({ roots: ['nope'] })), RangeError);
  });
});
