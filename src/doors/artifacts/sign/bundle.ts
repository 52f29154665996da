import { createHash, createPublicKey, createSign, type KeyObject, X509Certificate } from 'node:crypto';
import { GatewayError } from '#core/errors';

/** Media type of a Sigstore bundle v0.3 (sigstore/protobuf-specs, bundle.proto). */
export const BUNDLE_V03 = 'application/vnd.dev.sigstore.bundle.v0.3+json';

/** A Sigstore bundle with a message signature, as stored and exchanged. */
export interface SigstoreBundle {
  readonly mediaType: string;
  readonly verificationMaterial: {
    readonly publicKey?: { readonly hint: string };
    readonly certificate?: { readonly rawBytes: string };
    readonly tlogEntries: readonly unknown[];
    readonly timestampVerificationData?: { readonly rfc3161Timestamps: readonly unknown[] };
  };
  readonly messageSignature: {
    readonly messageDigest: { readonly algorithm: 'SHA2_256'; readonly digest: string };
    readonly signature: string;
  };
}

function invalid(message: string): GatewayError {
  return new GatewayError('GW_ERR_ARTIFACTS_SIGNATURE_INVALID', { message });
}

/** The key id cosign and Sigstore use as a hint: hex SHA-256 of the DER SubjectPublicKeyInfo. */
export function keyHint(key: KeyObject | string): string {
  const k = typeof key === 'string' ? createPublicKey(key) : key;
  return createHash('sha256')
    .update(k.export({ format: 'der', type: 'spki' }))
    .digest('hex');
}

/** Builds a bundle from a DER ECDSA signature over the artifact (whose SHA-256 is `sha256Hex`). */
export function buildBundle(
  sha256Hex: string,
  signature: Buffer,
  material: { readonly hint: string } | { readonly certificate: X509Certificate },
): SigstoreBundle {
  return {
    mediaType: BUNDLE_V03,
    verificationMaterial: {
      ...('hint' in material
        ? { publicKey: { hint: material.hint } }
        : { certificate: { rawBytes: material.certificate.raw.toString('base64') } }),
      tlogEntries: [],
      timestampVerificationData: { rfc3161Timestamps: [] },
    },
    messageSignature: {
      messageDigest: { algorithm: 'SHA2_256', digest: Buffer.from(sha256Hex, 'hex').toString('base64') },
      signature: signature.toString('base64'),
    },
  };
}

/** Signs a stream with an ECDSA P-256 private key (SHA-256) and returns a bundle. */
export async function signStream(
  source: AsyncIterable<Uint8Array>,
  privateKey: KeyObject,
  material: { readonly hint: string } | { readonly certificate: X509Certificate },
): Promise<SigstoreBundle> {
  const signer = createSign('sha256');
  const hash = createHash('sha256');
  for await (const chunk of source) {
    signer.update(chunk);
    hash.update(chunk);
  }
  return buildBundle(hash.digest('hex'), signer.sign(privateKey), material);
}

const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Validates the shape of a submitted bundle; throws GW_ERR_ARTIFACTS_SIGNATURE_INVALID. */
export function parseBundle(value: unknown): SigstoreBundle {
  const b = value as Partial<SigstoreBundle> | null;
  if (typeof b !== 'object' || b === null) throw invalid('Signature bundle must be a JSON object');
  if (
    typeof b.mediaType !== 'string' ||
    !/^application\/vnd\.dev\.sigstore\.bundle(\.v0\.3)?\+json/.test(b.mediaType)
  ) {
    throw invalid(`Unsupported bundle media type "${String(b.mediaType)}"`);
  }
  const sig = b.messageSignature;
  if (
    sig?.messageDigest?.algorithm !== 'SHA2_256' ||
    !B64.test(sig.messageDigest.digest ?? '') ||
    !B64.test(sig.signature ?? '')
  ) {
    throw invalid('Bundle needs a messageSignature with a SHA2_256 digest and a signature');
  }
  if (Buffer.from(sig.messageDigest.digest, 'base64').length !== 32)
    throw invalid('Bundle message digest is not 32 bytes');
  const vm = b.verificationMaterial;
  const hint = vm?.publicKey?.hint;
  const hasKey = typeof hint === 'string';
  const hasCert = typeof vm?.certificate?.rawBytes === 'string' && B64.test(vm.certificate.rawBytes);
  if (vm === undefined || hasKey === hasCert)
    throw invalid('Bundle needs exactly one of a public key hint or a certificate');
  // The hint is shown as the signature's identity: short printable text, no line breaks or
  // bidirectional overrides that would make it read as another.
  if (hasKey && !/^[\x20-\x7e]{1,256}$/.test(hint))
    throw invalid('Bundle public key hint must be 1 to 256 printable ASCII characters');
  if (hasCert) {
    try {
      new X509Certificate(Buffer.from(vm.certificate?.rawBytes ?? '', 'base64'));
    } catch {
      throw invalid('Bundle certificate is not a DER X.509 certificate');
    }
  }
  // Only the bundle's own fields: anything else a client sends would be stored and served back.
  const tlogEntries = Array.isArray(vm.tlogEntries) ? vm.tlogEntries : [];
  const timestamps = vm.timestampVerificationData?.rfc3161Timestamps;
  return {
    mediaType: b.mediaType,
    verificationMaterial: {
      ...(hasKey ? { publicKey: { hint } } : { certificate: { rawBytes: vm.certificate?.rawBytes ?? '' } }),
      tlogEntries,
      ...(Array.isArray(timestamps) ? { timestampVerificationData: { rfc3161Timestamps: timestamps } } : {}),
    },
    messageSignature: {
      messageDigest: { algorithm: 'SHA2_256', digest: sig.messageDigest.digest },
      signature: sig.signature,
    },
  };
}

/** The hex SHA-256 a bundle claims to sign. */
export function bundleDigest(bundle: SigstoreBundle): string {
  return Buffer.from(bundle.messageSignature.messageDigest.digest, 'base64').toString('hex');
}
