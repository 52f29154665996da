/**
 * Gzip made from separately compressed pieces, the way pigz splits its work: each piece is a
 * raw DEFLATE stream ended by a sync flush (RFC 1951 §3.2.4: an empty stored block, so it stops
 * on a byte boundary and sets no final bit), so pieces concatenate into one valid stream. A
 * packument is compressed a fragment at a time while it downloads; once policy has decided, the
 * response is the fragments it kept plus a few small new pieces, without compressing 10 MB after
 * the last byte. The CRC-32 of the whole is combined from the pieces' own (zlib's crc32_combine).
 */
import { constants, crc32, deflateRawSync } from 'node:zlib';

/** Compressed bytes of one piece with the CRC-32 and length of what they decompress to. */
export interface DeflatePiece {
  readonly z: Buffer;
  readonly crc: number;
  readonly length: number;
}

/** Compresses `text` (at zlib `level`) into a piece that can be followed by any other piece. */
export function deflatePiece(
  text: string | Buffer,
  level: number = constants.Z_DEFAULT_COMPRESSION,
): DeflatePiece {
  const bytes = typeof text === 'string' ? Buffer.from(text) : text;
  return {
    z: deflateRawSync(bytes, { level, finishFlush: constants.Z_SYNC_FLUSH }),
    crc: crc32(bytes),
    length: bytes.length,
  };
}

// The reflected CRC-32 polynomial (ISO 3309, as gzip uses it).
const POLY = 0xedb88320;

/** a(x)·b(x) modulo the CRC polynomial, bits reflected (zlib crc32.c, multmodp). */
function multModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  let bb = b >>> 0;
  for (;;) {
    if ((a & m) !== 0) {
      p ^= bb;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    bb = bb & 1 ? (bb >>> 1) ^ POLY : bb >>> 1;
  }
  return p >>> 0;
}

/** x^(2^k) modulo the polynomial, for k = 0..31. */
const X2N: number[] = (() => {
  const table: number[] = [];
  let p = 0x40000000; // x^1
  for (let k = 0; k < 32; k++) {
    table.push(p);
    p = multModP(p, p);
  }
  return table;
})();

/** x^(n·2^k) modulo the polynomial (zlib crc32.c, x2nmodp). */
function x2nModP(n: number, k: number): number {
  let p = 0x80000000; // x^0
  let rest = n;
  let i = k;
  while (rest > 0) {
    if (rest % 2 === 1) p = multModP(X2N[i & 31] as number, p);
    rest = Math.floor(rest / 2);
    i += 1;
  }
  return p;
}

/** The CRC-32 of A followed by B, from crc(A), crc(B) and B's length in bytes. */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  return (multModP(x2nModP(lengthB, 3), crcA) ^ crcB) >>> 0;
}

// RFC 1952 §2.3: magic, CM=8 (deflate), no flags, no mtime, XFL=0, OS=255 (unknown).
const HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
// A final fixed-Huffman block holding only the end-of-block code: what zlib emits for Z_FINISH
// after a flush.
const FINAL_BLOCK = Buffer.from([0x03, 0x00]);

/** One gzip member whose data is the pieces in order. */
export function gzipOfPieces(pieces: readonly DeflatePiece[]): Buffer {
  let crc = 0;
  let length = 0;
  const parts: Buffer[] = [HEADER];
  for (const p of pieces) {
    if (p.length === 0) continue;
    crc = crc32Combine(crc, p.crc, p.length);
    length += p.length;
    parts.push(p.z);
  }
  const trailer = Buffer.allocUnsafe(8);
  trailer.writeUInt32LE(crc, 0);
  // ISIZE is the length modulo 2^32 (RFC 1952 §2.3.1).
  trailer.writeUInt32LE(length % 0x100000000, 4);
  parts.push(FINAL_BLOCK, trailer);
  return Buffer.concat(parts);
}
