import { createPublicKey, type KeyObject } from 'node:crypto';

/**
 * ECDSA P-256 verification of a precomputed SHA-256 digest (FIPS 186-5 §6.4.2). Node's crypto
 * only verifies messages it hashes itself; a download check has the artifact's digest (already
 * verified against the stored bytes), so this verifies against the digest without reading the
 * artifact again. Verification handles only public data, so constant time is not required.
 */

const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const A = P - 3n;
const B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;
const G: Point = {
  x: 0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n,
  y: 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n,
};

interface Point {
  readonly x: bigint;
  readonly y: bigint;
}

const mod = (a: bigint, m: bigint) => ((a % m) + m) % m;

function inverse(a: bigint, m: bigint): bigint {
  let [r0, r1] = [mod(a, m), m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return mod(s0, m);
}

function add(p: Point | undefined, q: Point | undefined): Point | undefined {
  if (p === undefined) return q;
  if (q === undefined) return p;
  let lambda: bigint;
  if (p.x === q.x) {
    if (mod(p.y + q.y, P) === 0n) return undefined;
    lambda = mod((3n * p.x * p.x + A) * inverse(2n * p.y, P), P);
  } else {
    lambda = mod((q.y - p.y) * inverse(q.x - p.x, P), P);
  }
  const x = mod(lambda * lambda - p.x - q.x, P);
  return { x, y: mod(lambda * (p.x - x) - p.y, P) };
}

function multiply(k: bigint, point: Point): Point | undefined {
  let result: Point | undefined;
  let addend: Point | undefined = point;
  for (let n = k; n > 0n; n >>= 1n) {
    if ((n & 1n) === 1n) result = add(result, addend);
    addend = add(addend, addend);
  }
  return result;
}

function onCurve(p: Point): boolean {
  return mod(p.y * p.y - (p.x * p.x * p.x + A * p.x + B), P) === 0n;
}

const big = (b: Buffer) => (b.length === 0 ? 0n : BigInt(`0x${b.toString('hex')}`));

/** Parses a DER ECDSA-Sig-Value (SEQUENCE of two INTEGERs); undefined when malformed. */
export function parseDerSignature(der: Buffer): { r: bigint; s: bigint } | undefined {
  if (der.length < 8 || der[0] !== 0x30 || der[1] !== der.length - 2) return undefined;
  let at = 2;
  const int = (): bigint | undefined => {
    if (der[at] !== 0x02) return undefined;
    const len = der[at + 1] ?? 0;
    if (len === 0 || len > 33 || at + 2 + len > der.length) return undefined;
    const value = big(der.subarray(at + 2, at + 2 + len));
    at += 2 + len;
    return value;
  };
  const r = int();
  const s = int();
  if (r === undefined || s === undefined || at !== der.length) return undefined;
  return { r, s };
}

/** The affine point of a P-256 public key; undefined for other key types. */
export function p256Point(key: KeyObject | string): Point | undefined {
  const k = typeof key === 'string' ? createPublicKey(key) : key;
  if (k.asymmetricKeyType !== 'ec' || k.asymmetricKeyDetails?.namedCurve !== 'prime256v1') return undefined;
  const jwk = k.export({ format: 'jwk' });
  const point = {
    x: big(Buffer.from(jwk.x ?? '', 'base64url')),
    y: big(Buffer.from(jwk.y ?? '', 'base64url')),
  };
  return onCurve(point) ? point : undefined;
}

/** Verifies a DER ECDSA P-256 signature over a 32-byte SHA-256 digest. */
export function verifyDigestP256(key: KeyObject | string, digest: Buffer, signature: Buffer): boolean {
  const q = p256Point(key);
  const sig = parseDerSignature(signature);
  if (q === undefined || sig === undefined || digest.length !== 32) return false;
  const { r, s } = sig;
  if (r <= 0n || r >= N || s <= 0n || s >= N) return false;
  const e = big(digest);
  const w = inverse(s, N);
  const point = add(multiply(mod(e * w, N), G), multiply(mod(r * w, N), q));
  return point !== undefined && mod(point.x, N) === r;
}
