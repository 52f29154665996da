import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/** scrypt cost parameters: N = 2^ln, block size r, parallelism p (RFC 7914). */
export interface ScryptParams {
  readonly ln: number;
  readonly r: number;
  readonly p: number;
}

const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
const FORMAT =
  /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]{16,64})\$([A-Za-z0-9+/]{32,128})$/;

function derive(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const N = 2 ** params.ln;
  // scrypt needs 128·N·r bytes; allow twice that so large parameters do not fail on the default cap.
  const maxmem = 256 * N * params.r + 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(
      password.normalize('NFKC'),
      salt,
      KEY_LENGTH,
      { N, r: params.r, p: params.p, maxmem },
      (error, key) => (error === null ? resolve(key) : reject(error)),
    );
  });
}

const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');

/**
 * Hashes a password with scrypt and a random salt into a self-describing string,
 * `$scrypt$ln=17,r=8,p=1$<salt>$<hash>` (base64 without padding), so that parameters can
 * change later and old hashes still verify.
 */
export async function hashPassword(password: string, params: ScryptParams): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  const key = await derive(password, salt, params);
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${b64(salt)}$${b64(key)}`;
}

/** The parameters and material of a stored hash, or undefined when it is not one of ours. */
export function parsePasswordHash(
  stored: string,
): { readonly params: ScryptParams; readonly salt: Buffer; readonly key: Buffer } | undefined {
  const m = FORMAT.exec(stored);
  if (m === null) return undefined;
  const [, ln, r, p, salt, key] = m as unknown as [string, string, string, string, string, string];
  const params = { ln: Number(ln), r: Number(r), p: Number(p) };
  // Bounds keep a tampered row from turning a login into a memory or CPU bomb.
  if (params.ln < 1 || params.ln > 24 || params.r < 1 || params.r > 32 || params.p < 1 || params.p > 16)
    return undefined;
  return { params, salt: Buffer.from(salt, 'base64'), key: Buffer.from(key, 'base64') };
}

/**
 * Verifies a password against a stored hash in constant time. A malformed stored hash
 * verifies as false rather than throwing, so a damaged row cannot be used to probe.
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parsePasswordHash(stored);
  if (parsed === undefined) return false;
  const key = await derive(password, parsed.salt, parsed.params);
  return key.length === parsed.key.length && timingSafeEqual(key, parsed.key);
}

/** True when a stored hash was made with other parameters than the configured ones. */
export function needsRehash(stored: string, params: ScryptParams): boolean {
  const parsed = parsePasswordHash(stored);
  return (
    parsed === undefined ||
    parsed.params.ln !== params.ln ||
    parsed.params.r !== params.r ||
    parsed.params.p !== params.p
  );
}

const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';

/** A random password of `length` characters from an unambiguous alphabet, without modulo bias. */
export function randomPassword(length = 24): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 232 is the largest multiple of 58 below 256; rejecting the rest keeps the draw uniform.
      if (byte < 232 && out.length < length) out += ALPHABET[byte % ALPHABET.length];
    }
  }
  return out;
}
