import { createHash, createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { type SigstoreBundle, bundleDigest, keyHint } from './bundle.ts';
import { verifyDigestP256 } from './p256.ts';

/** The trust policy: trusted keys, CA roots and accepted certificate subjects. */
export interface TrustPolicy {
  readonly mode: 'off' | 'require';
  readonly keys: readonly { readonly id: string; readonly publicKey: string }[];
  readonly roots: readonly string[];
  readonly subjects: readonly string[];
}

/** The result of checking one artifact's signatures against the policy. */
export interface TrustVerdict {
  readonly trusted: boolean;
  /** Who vouched: `key:<id>` or `cert:<subject>`. */
  readonly signer?: string;
  readonly reasons: readonly string[];
  readonly policyVersion: string;
  /** Until when the verdict may be reused (a certificate's expiry bounds it). */
  readonly validUntil: number;
}

const CODE_SIGNING = '1.3.6.1.5.5.7.3.3';

/** A compiled trust policy with a version hash, parsed keys and roots. */
export interface CompiledTrust {
  readonly policy: TrustPolicy;
  readonly version: string;
  readonly keys: readonly { readonly id: string; readonly key: KeyObject; readonly hint: string }[];
  readonly roots: readonly X509Certificate[];
}

/** Compiles a policy; throws RangeError for keys or roots that do not parse (validate time). */
export function compileTrust(policy: TrustPolicy): CompiledTrust {
  const keys = policy.keys.map(({ id, publicKey }) => {
    try {
      const key = createPublicKey(publicKey);
      return { id, key, hint: keyHint(key) };
    } catch (cause) {
      throw new RangeError(`Trusted key "${id}" is not a PEM public key`, { cause });
    }
  });
  const roots = policy.roots.flatMap((pem, i) => {
    const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0) throw new RangeError(`Trust root ${i} is not a PEM certificate`);
    return blocks.map((b) => new X509Certificate(b));
  });
  const version = createHash('sha256').update(JSON.stringify(policy)).digest('hex').slice(0, 16);
  return { policy, version, keys, roots };
}

function wildcard(pattern: string): RegExp {
  return new RegExp(
    `^${pattern
      .split('*')
      .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
}

function subjectNames(cert: X509Certificate): string[] {
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
  const sans = (cert.subjectAltName ?? '')
    .split(/,\s*/)
    .map((s) => s.replace(/^[A-Za-z ]+:/, ''))
    .filter((s) => s !== '');
  return [...(cn === undefined ? [] : [cn]), ...sans];
}

/** Validates a leaf against the roots: signature chain, validity at `now`, code-signing EKU, subject. */
function checkCertificate(
  trust: CompiledTrust,
  leaf: X509Certificate,
  now: number,
): { ok: true; subject: string } | { ok: false; reason: string } {
  const valid = (c: X509Certificate) => Date.parse(c.validFrom) <= now && now <= Date.parse(c.validTo);
  if (!valid(leaf))
    return {
      ok: false,
      reason: `Certificate "${leaf.subject.replace(/\n/g, ', ')}" is outside its validity period`,
    };
  if (!(leaf.keyUsage ?? []).includes(CODE_SIGNING))
    return { ok: false, reason: 'Certificate lacks the code-signing extended key usage' };
  // Walk up through configured certificates (roots may include intermediates) to a self-signed root.
  let current = leaf;
  for (let depth = 0; depth < 5; depth += 1) {
    const issuer = trust.roots.find((r) => current.checkIssued(r) && current.verify(r.publicKey));
    if (issuer === undefined) return { ok: false, reason: 'Certificate does not chain to a trusted root' };
    if (!valid(issuer))
      return {
        ok: false,
        reason: `Issuer "${issuer.subject.replace(/\n/g, ', ')}" is outside its validity period`,
      };
    if (issuer.ca !== true) return { ok: false, reason: 'Certificate issuer is not a CA' };
    if (issuer.checkIssued(issuer)) {
      const names = subjectNames(leaf);
      const patterns = trust.policy.subjects;
      const subject = names[0] ?? leaf.subject;
      if (patterns.length > 0 && !names.some((n) => patterns.some((p) => wildcard(p).test(n)))) {
        return { ok: false, reason: `Certificate subject "${subject}" matches no trusted subject pattern` };
      }
      return { ok: true, subject };
    }
    current = issuer;
  }
  return { ok: false, reason: 'Certificate chain is too long' };
}

/** Checks one bundle; returns the signer or why it does not count. */
function checkBundle(
  trust: CompiledTrust,
  bundle: SigstoreBundle,
  sha256: string,
  now: number,
): { signer?: string; reason?: string; until?: number } {
  if (bundleDigest(bundle) !== sha256) return { reason: 'Signature is over a different digest' };
  const digest = Buffer.from(sha256, 'hex');
  const signature = Buffer.from(bundle.messageSignature.signature, 'base64');
  const raw = bundle.verificationMaterial.certificate?.rawBytes;
  if (raw !== undefined) {
    const cert = new X509Certificate(Buffer.from(raw, 'base64'));
    const verdict = checkCertificate(trust, cert, now);
    if (!verdict.ok) return { reason: verdict.reason };
    if (!verifyDigestP256(cert.publicKey, digest, signature))
      return { reason: 'Signature does not verify with the certificate key' };
    return { signer: `cert:${verdict.subject}`, until: Date.parse(cert.validTo) };
  }
  const hint = bundle.verificationMaterial.publicKey?.hint ?? '';
  // The hint selects the key when it names one; otherwise every trusted key is tried.
  const candidates = trust.keys.filter((k) => k.id === hint || k.hint === hint);
  for (const k of candidates.length > 0 ? candidates : trust.keys) {
    if (verifyDigestP256(k.key, digest, signature)) return { signer: `key:${k.id}` };
  }
  return { reason: 'Signature does not verify with any trusted key' };
}

/** Evaluates the trust policy over every stored signature of an artifact. */
export function evaluateTrust(
  trust: CompiledTrust,
  sha256: string,
  bundles: readonly SigstoreBundle[],
  now: number,
): TrustVerdict {
  const reasons: string[] = [];
  const base = { policyVersion: trust.version, validUntil: now + 10 * 60_000 };
  if (trust.policy.mode === 'off') return { ...base, trusted: true, reasons: ['Trust policy is off'] };
  if (bundles.length === 0) return { ...base, trusted: false, reasons: ['Artifact has no signature'] };
  for (const bundle of bundles) {
    const result = checkBundle(trust, bundle, sha256, now);
    if (result.signer !== undefined) {
      return {
        ...base,
        trusted: true,
        signer: result.signer,
        reasons: [`Signed by ${result.signer}`],
        validUntil: Math.min(base.validUntil, result.until ?? Number.MAX_SAFE_INTEGER),
      };
    }
    reasons.push(result.reason ?? 'Signature rejected');
  }
  return { ...base, trusted: false, reasons };
}
