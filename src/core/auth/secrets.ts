import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** SHA-256 hex of a high-entropy secret; enough for random tokens, unlike for passwords. */
export function sha256(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Compares a presented secret with a stored SHA-256 hex in constant time. */
export function secretMatches(presented: string, storedHash: string): boolean {
  const a = Buffer.from(sha256(presented), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A random id of `bytes` bytes as lower-case hex (safe in key prefixes: no `_` or `.`). */
export function randomId(bytes = 12): string {
  return randomBytes(bytes).toString('hex');
}

/** A random secret of 32 bytes as base64url. */
export function randomSecret(): string {
  return randomBytes(32).toString('base64url');
}
