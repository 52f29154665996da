import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { bundleFromJSON } from '@sigstore/bundle';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { keyHint, signStream } from './bundle.ts';

async function* once(data: Buffer): AsyncGenerator<Buffer> {
  yield data;
}

// @sigstore/verify is the verifier npm uses for provenance: an independent implementation that
// checks the bundle exactly as a Sigstore client would, with no transparency log required.
void it('bundles verify with @sigstore/verify using the public key hint, and tampering fails', async () => {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const data = randomBytes(50_000);
  const hint = keyHint(key.publicKey);
  const ours = await signStream(once(data), key.privateKey, { hint });
  const bundle = bundleFromJSON(JSON.parse(JSON.stringify(ours)));
  const trustedRoot = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [],
    certificateAuthorities: [],
    ctlogs: [],
    timestampAuthorities: [],
  };
  const keys = {
    [hint]: {
      rawBytes: key.publicKey.export({ format: 'der', type: 'spki' }),
      keyDetails: 5, // PKIX_ECDSA_P256_SHA_256 in sigstore/protobuf-specs.
      validFor: { start: new Date(0) },
    },
  };
  const verifier = new Verifier(toTrustMaterial(trustedRoot as never, keys as never), {
    tlogThreshold: 0,
    ctlogThreshold: 0,
    timestampThreshold: 0,
  });
  const signer = verifier.verify(toSignedEntity(bundle, data));
  assert.equal(signer.key.asymmetricKeyType, 'ec');
  const other = Buffer.from(data);
  other[0] = (other[0] ?? 0) ^ 1;
  assert.throws(() => verifier.verify(toSignedEntity(bundle, other)));
  assert.equal(
    createHash('sha256').update(data).digest('base64'),
    ours.messageSignature.messageDigest.digest,
  );
});
