import { createPrivateKey, webcrypto, X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { GatewayError } from '#core/errors';

const EC_IMPORT = { name: 'ECDSA', namedCurve: 'P-256' } as const;

/** Writes a file atomically (temporary name, then rename) so a reader never sees half a key. */
export async function writeFileAtomic(file: string, data: string, mode: number): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(temporary, data, { mode });
  // The umask may have narrowed or the file may pre-exist; set the mode explicitly.
  await chmod(temporary, mode);
  await rename(temporary, file);
}

/** Reads a file, or undefined when it does not exist. */
export async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw invalid(file, 'cannot be read', error);
  }
}

/** A GW_ERR_TLS_INVALID naming the file and what is wrong with it. */
export function invalid(file: string, problem: string, cause?: unknown): GatewayError {
  return new GatewayError('GW_ERR_TLS_INVALID', {
    message: `TLS file "${file}" ${problem}`,
    details: { file },
    cause,
  });
}

/** Exports a WebCrypto private key as PKCS#8 PEM. */
export async function privateKeyToPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({
    type: 'pkcs8',
    format: 'pem',
  }) as string;
}

/** Imports a P-256 private key PEM as a WebCrypto signing key. */
export async function importEcSigningKey(pem: string): Promise<webcrypto.CryptoKey> {
  const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  return webcrypto.subtle.importKey('pkcs8', der, EC_IMPORT, true, ['sign']);
}

/** The PEM blocks of a certificate file, in order (leaf first in a chain file). */
export function splitPemCertificates(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/**
 * Parses a certificate and key pair and checks that the key belongs to the leaf certificate;
 * throws GW_ERR_TLS_INVALID naming the offending file.
 */
export function checkKeyPair(
  certPem: string,
  keyPem: string,
  files: { readonly cert: string; readonly key: string },
): X509Certificate {
  const [leafPem] = splitPemCertificates(certPem);
  if (leafPem === undefined) throw invalid(files.cert, 'holds no PEM certificate');
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(leafPem);
  } catch (error) {
    throw invalid(files.cert, 'holds a certificate that cannot be parsed', error);
  }
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(keyPem);
  } catch (error) {
    throw invalid(files.key, 'holds no readable private key', error);
  }
  if (!leaf.checkPrivateKey(key)) {
    throw invalid(files.key, `does not hold the private key of the certificate in "${files.cert}"`);
  }
  return leaf;
}
