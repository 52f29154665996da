import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** A content digest: algorithm and lower-case hex value. */
export interface Digest {
  readonly algorithm: 'sha512' | 'sha384' | 'sha256' | 'sha1';
  readonly hex: string;
}

const STRENGTH = { sha512: 4, sha384: 3, sha256: 2, sha1: 1 } as const;

/**
 * The strongest digest of an SRI string (`sha512-<base64> sha1-<base64>`, W3C SRI §3.3), or a
 * bare hex digest of a named algorithm (npm's legacy `shasum`, PyPI's `#sha256=`).
 */
export function parseIntegrity(
  sri: string | undefined,
  fallbackHex?: { algorithm: Digest['algorithm']; hex: string },
): Digest | undefined {
  let best: Digest | undefined;
  for (const token of (sri ?? '').trim().split(/\s+/)) {
    const m = /^(sha512|sha384|sha256|sha1)-([A-Za-z0-9+/]+={0,2})(\?.*)?$/.exec(token);
    if (m === null) continue;
    const algorithm = m[1] as Digest['algorithm'];
    const hex = Buffer.from(m[2] as string, 'base64').toString('hex');
    if (best === undefined || STRENGTH[algorithm] > STRENGTH[best.algorithm]) best = { algorithm, hex };
  }
  if (best !== undefined) return best;
  if (fallbackHex !== undefined && /^[0-9a-fA-F]{40,128}$/.test(fallbackHex.hex)) {
    return { algorithm: fallbackHex.algorithm, hex: fallbackHex.hex.toLowerCase() };
  }
  return undefined;
}

/** Raised when the stream's digest differs from the expected one. */
export class IntegrityMismatch extends Error {
  override readonly name = 'IntegrityMismatch';
  readonly expected: Digest;
  readonly actual: string;
  constructor(expected: Digest, actual: string) {
    super(`expected ${expected.algorithm} ${expected.hex.slice(0, 16)}…, got ${actual.slice(0, 16)}…`);
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * Passes bytes through while hashing them, holding back the most recent chunk until the next
 * one arrives; at the end the digest is checked before that last chunk is released. A client
 * therefore never receives a complete body whose digest is wrong: on a mismatch the stream
 * errors instead of ending, and the connection is aborted.
 */
export class VerifyingStream extends Transform {
  readonly #expected: Digest;
  readonly #hash: Hash;
  #held: Buffer | undefined;
  bytes = 0;

  constructor(expected: Digest) {
    super();
    this.#expected = expected;
    this.#hash = createHash(expected.algorithm);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#hash.update(chunk);
    this.bytes += chunk.length;
    const previous = this.#held;
    this.#held = chunk;
    done(null, previous);
  }

  override _flush(done: TransformCallback): void {
    const actual = this.#hash.digest('hex');
    if (actual !== this.#expected.hex) {
      done(new IntegrityMismatch(this.#expected, actual));
      return;
    }
    done(null, this.#held);
  }
}
