import { isIP, isIPv6 } from 'node:net';
import { webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import { join } from 'node:path';
import type * as X509 from '@peculiar/x509';
import { splitSubjectAltNames } from './peer.ts';
import {
  checkKeyPair,
  importEcSigningKey,
  invalid,
  privateKeyToPem,
  readOptional,
  writeFileAtomic,
} from './pem.ts';

let x509Module: Promise<typeof X509> | undefined;

/**
 * @peculiar/x509 (and the Reflect metadata polyfill it needs first, docs/adr/0020) is loaded
 * the first time a certificate is generated: a process that never issues one does not carry
 * it in memory.
 */
function loadX509(): Promise<typeof X509> {
  x509Module ??= (async () => {
    // oxlint-disable-next-line import/no-unassigned-import
    await import('reflect-metadata');
    const x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(webcrypto);
    return x509;
  })();
  return x509Module;
}

const EC_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

/** A certificate authority as PEM text plus where it lives. */
export interface CertificateAuthority {
  readonly certPem: string;
  readonly keyPem: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/** A certificate issued by a CA, with its private key and the CA certificate that verifies it. */
export interface IssuedCertificate {
  readonly certPem: string;
  readonly keyPem: string;
  readonly caPem: string;
}

export interface IssueOptions {
  readonly ca: Pick<CertificateAuthority, 'certPem' | 'keyPem'>;
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  /** URI SANs such as `spiffe://example.test/ns/orders/sa/api`. */
  readonly uris?: readonly string[];
  /** Subject common name; defaults to the first DNS name, URI or IP address. */
  readonly commonName?: string;
  readonly usage: 'server' | 'client';
  readonly days: number;
  /** Epoch milliseconds used as `notBefore` (tests pass an injected clock). */
  readonly now?: number;
}

async function newKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_ALGORITHM, true, ['sign', 'verify']);
}

function validity(now: number, days: number): { notBefore: Date; notAfter: Date } {
  // A minute of back-dating tolerates small clock skew between the issuer and its peers.
  return { notBefore: new Date(now - 60_000), notAfter: new Date(now + days * DAY_MS) };
}

async function createCa(now: number, days: number): Promise<{ certPem: string; keyPem: string }> {
  const x509 = await loadX509();
  const keys = await newKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=Gatehouse Development CA, O=Gatehouse',
    keys,
    signingAlgorithm: SIGNING,
    ...validity(now, days),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await privateKeyToPem(keys.privateKey) };
}

/**
 * Loads the development CA from `<dataDir>/tls/`, or generates an ECDSA P-256 one there on
 * first use (key file mode 0600). A restart reuses it so issued certificates stay trusted.
 */
export async function ensureDevelopmentCa(
  dataDir: string,
  options: { readonly now?: number; readonly days?: number } = {},
): Promise<CertificateAuthority> {
  const certFile = join(dataDir, 'tls', 'ca.crt');
  const keyFile = join(dataDir, 'tls', 'ca.key');
  const [certPem, keyPem] = await Promise.all([readOptional(certFile), readOptional(keyFile)]);
  if (certPem !== undefined && keyPem !== undefined) {
    checkKeyPair(certPem, keyPem, { cert: certFile, key: keyFile });
    return { certPem, keyPem, certFile, keyFile };
  }
  if (certPem !== undefined || keyPem !== undefined) {
    // Half a CA is a damaged data folder; regenerating would silently distrust issued certificates.
    throw invalid(certPem === undefined ? certFile : keyFile, 'is missing while its pair exists');
  }
  const created = await createCa(options.now ?? Date.now(), options.days ?? 3650);
  await writeFileAtomic(keyFile, created.keyPem, 0o600);
  await writeFileAtomic(certFile, created.certPem, 0o644);
  return { ...created, certFile, keyFile };
}

function subjectAltNames(options: IssueOptions): X509.JsonGeneralName[] {
  return [
    ...(options.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(options.ipAddresses ?? []).map((value) => {
      if (isIP(value) === 0) throw new TypeError(`Invalid IP address "${value}" for a certificate`);
      return { type: 'ip' as const, value };
    }),
    ...(options.uris ?? []).map((value) => ({ type: 'url' as const, value })),
  ];
}

function escapeRdn(value: string): string {
  // RFC 4514 section 2.4: characters that must be escaped in an attribute value.
  return value.replace(/[,+"\\<>;=]/g, (c) => `\\${c}`);
}

/** Issues a server or client certificate signed by `ca`, with a fresh P-256 key. */
export async function issueCertificate(options: IssueOptions): Promise<IssuedCertificate> {
  if (!Number.isFinite(options.days) || options.days <= 0) {
    throw new RangeError(`Invalid certificate lifetime "${options.days}" days`);
  }
  const sans = subjectAltNames(options);
  const commonName = options.commonName ?? sans[0]?.value;
  if (commonName === undefined)
    throw new TypeError('A certificate needs a common name or a subject alternative name');
  const x509 = await loadX509();
  const caCert = new x509.X509Certificate(options.ca.certPem);
  const caKey = await importEcSigningKey(options.ca.keyPem);
  const keys = await newKeyPair();
  const usage =
    options.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth;
  const extensions: X509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([usage], false),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(caCert),
  ];
  if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans, false));
  const cert = await x509.X509CertificateGenerator.create({
    subject: `CN=${escapeRdn(commonName)}`,
    issuer: caCert.subject,
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: SIGNING,
    ...validity(options.now ?? Date.now(), options.days),
    extensions,
  });
  return {
    certPem: cert.toString('pem'),
    keyPem: await privateKeyToPem(keys.privateKey),
    caPem: options.ca.certPem,
  };
}

export interface ServerCertificateFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

function covers(
  certPem: string,
  dnsNames: readonly string[],
  ipAddresses: readonly string[],
  now: number,
): boolean {
  const cert = new NodeX509(certPem);
  // Renew a month before expiry so that a long-running embedded server never serves a stale one.
  if (Date.parse(cert.validTo) - now < 30 * DAY_MS) return false;
  const sans = new Set(splitSubjectAltNames(cert.subjectAltName));
  const ips = new Set(
    [...sans].filter((san) => san.startsWith('IP Address:')).map((san) => canonicalIp(san.slice(11))),
  );
  return (
    dnsNames.every((name) => sans.has(`DNS:${name}`)) && ipAddresses.every((ip) => ips.has(canonicalIp(ip)))
  );
}

/** One spelling per address: Node prints IPv6 SANs uncompressed (`0:0:0:0:0:0:0:1` for `::1`). */
function canonicalIp(ip: string): string {
  return isIPv6(ip) ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip;
}

/**
 * The embedded server certificate under `<dataDir>/tls/`: reused while it is valid for the
 * requested names, otherwise issued again from the development CA.
 */
export async function ensureServerCertificate(options: {
  readonly dataDir: string;
  readonly ca: CertificateAuthority;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly days?: number;
  readonly now?: number;
}): Promise<ServerCertificateFiles> {
  const certFile = join(options.dataDir, 'tls', 'server.crt');
  const keyFile = join(options.dataDir, 'tls', 'server.key');
  const now = options.now ?? Date.now();
  const [certPem, keyPem] = await Promise.all([readOptional(certFile), readOptional(keyFile)]);
  if (certPem !== undefined && keyPem !== undefined) {
    checkKeyPair(certPem, keyPem, { cert: certFile, key: keyFile });
    if (covers(certPem, options.dnsNames, options.ipAddresses, now)) {
      return { certFile, keyFile, caFile: options.ca.certFile };
    }
  }
  const issued = await issueCertificate({
    ca: options.ca,
    dnsNames: options.dnsNames,
    ipAddresses: options.ipAddresses,
    usage: 'server',
    days: options.days ?? 397,
    now,
  });
  await writeFileAtomic(keyFile, issued.keyPem, 0o600);
  await writeFileAtomic(certFile, issued.certPem, 0o644);
  return { certFile, keyFile, caFile: options.ca.certFile };
}
