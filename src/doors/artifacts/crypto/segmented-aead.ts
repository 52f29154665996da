import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject, randomBytes } from 'node:crypto';
import { GatewayError } from '#core/errors';

/**
 * Segmented AES-256-GCM, after Tink's streaming AEAD and the STREAM construction of Hoang,
 * Reyhanitabar, Rogaway and Vizár ("Online authenticated-encryption and its nonce-reuse
 * misuse-resistance", 2015). The plaintext is cut into segments of `segmentSize` bytes; segment
 * `i` is sealed with nonce `prefix(7) ‖ uint32be(i) ‖ last(1)` and the header as additional
 * data. Reordering changes `i`, truncation at a segment boundary turns a non-final segment into
 * the final one, and any bit flip breaks a tag: each is detected at the segment it touches, and a
 * byte range decrypts only the segments that hold it.
 */

const MAGIC = Buffer.from('GHA1', 'latin1');
/** Header: magic(4) ‖ segment size uint32be(4) ‖ nonce prefix(7) ‖ reserved(1). */
export const HEADER_SIZE = 16;
export const TAG_SIZE = 16;
const PREFIX_SIZE = 7;
export const MIN_SEGMENT = 64 * 1024;
export const MAX_SEGMENT = 1024 * 1024;

/** The parsed header of one encrypted blob. */
export interface SegmentHeader {
  readonly bytes: Buffer;
  readonly segmentSize: number;
  readonly prefix: Buffer;
}

function integrity(message: string, details: Record<string, unknown> = {}, cause?: unknown): GatewayError {
  return new GatewayError('GW_ERR_ARTIFACTS_INTEGRITY', { message, details, cause });
}

/** Builds a fresh header with a random nonce prefix. */
export function newHeader(segmentSize: number): SegmentHeader {
  if (!Number.isInteger(segmentSize) || segmentSize < MIN_SEGMENT || segmentSize > MAX_SEGMENT) {
    throw new RangeError(`Segment size ${segmentSize} is outside ${MIN_SEGMENT}..${MAX_SEGMENT}`);
  }
  const bytes = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(bytes, 0);
  bytes.writeUInt32BE(segmentSize, 4);
  const prefix = randomBytes(PREFIX_SIZE);
  prefix.copy(bytes, 8);
  return { bytes, segmentSize, prefix };
}

/** Parses and checks a header; a wrong magic or size is an integrity failure. */
export function parseHeader(bytes: Uint8Array): SegmentHeader {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length !== HEADER_SIZE || !buf.subarray(0, 4).equals(MAGIC)) {
    throw integrity('Encrypted blob header is invalid');
  }
  const segmentSize = buf.readUInt32BE(4);
  if (segmentSize < MIN_SEGMENT || segmentSize > MAX_SEGMENT)
    throw integrity('Encrypted blob header is invalid');
  return { bytes: Buffer.from(buf), segmentSize, prefix: Buffer.from(buf.subarray(8, 8 + PREFIX_SIZE)) };
}

function nonce(header: SegmentHeader, index: number, last: boolean): Buffer {
  const n = Buffer.alloc(12);
  header.prefix.copy(n, 0);
  n.writeUInt32BE(index, PREFIX_SIZE);
  n[11] = last ? 1 : 0;
  return n;
}

/**
 * Ciphertext leaves a segment in pieces of this size. Each piece is a fresh buffer that lives
 * until the blob store has written it; small pieces mean a young-generation collection that
 * runs meanwhile promotes 64 KiB of soon-dead buffer, not a whole segment (ADR 0100).
 */
const PIECE = 64 * 1024;

/** Seals one segment into ciphertext pieces, the last of which carries the tag. */
function* seal(
  key: KeyObject,
  header: SegmentHeader,
  index: number,
  last: boolean,
  plain: Buffer,
): Generator<Buffer> {
  if (index > 0xffff_ffff) throw new RangeError('Too many segments');
  const cipher = createCipheriv('aes-256-gcm', key, nonce(header, index, last));
  cipher.setAAD(header.bytes);
  for (let at = 0; at < plain.length; at += PIECE) yield cipher.update(plain.subarray(at, at + PIECE));
  const tail = cipher.final();
  yield tail.length === 0 ? cipher.getAuthTag() : Buffer.concat([tail, cipher.getAuthTag()]);
}

/**
 * Opens one segment into plaintext pieces of at most PIECE bytes, so the part of a segment not
 * yet sent is separate buffers that a scavenge can free as they go, not one segment-sized one.
 */
function open(key: KeyObject, header: SegmentHeader, index: number, last: boolean, sealed: Buffer): Buffer[] {
  if (sealed.length < TAG_SIZE) throw integrity('Encrypted segment is truncated', { segment: index });
  const decipher = createDecipheriv('aes-256-gcm', key, nonce(header, index, last));
  decipher.setAAD(header.bytes);
  const end = sealed.length - TAG_SIZE;
  decipher.setAuthTag(sealed.subarray(end));
  const pieces: Buffer[] = [];
  for (let at = 0; at < end; at += PIECE)
    pieces.push(decipher.update(sealed.subarray(at, Math.min(end, at + PIECE))));
  try {
    // Nothing of a segment is released before its tag verified.
    const tail = decipher.final();
    if (tail.length > 0) pieces.push(tail);
    return pieces;
  } catch (cause) {
    throw integrity(
      'Encrypted segment failed authentication (tampered, reordered or truncated)',
      { segment: index },
      cause,
    );
  }
}

/** Number of segments of a plaintext of `size` bytes (an empty plaintext has one empty final segment). */
export function segmentCount(size: number, segmentSize: number): number {
  return Math.max(1, Math.ceil(size / segmentSize));
}

/** Size of the stored blob for a plaintext of `size` bytes. */
export function ciphertextSize(size: number, segmentSize: number): number {
  return HEADER_SIZE + size + segmentCount(size, segmentSize) * TAG_SIZE;
}

/**
 * Collects a byte stream into fixed-size blocks, holding back the newest full block until the
 * next byte arrives, so the caller learns which block is the last one. The two block buffers are
 * recycled: a consumer must be done with a block (seal and open copy it) before it asks for the
 * next, which keeps a gigabyte stream from churning through thousands of large allocations.
 */
async function* blocks(
  source: AsyncIterable<Uint8Array>,
  size: number,
): AsyncGenerator<{ block: Buffer; last: boolean }> {
  let current: Buffer = Buffer.allocUnsafe(size);
  let filled = 0;
  let pending: Buffer | undefined;
  for await (const chunk of source) {
    let offset = 0;
    while (offset < chunk.byteLength) {
      if (filled === size) {
        const spare: Buffer | undefined = pending;
        if (spare !== undefined) yield { block: spare, last: false };
        pending = current;
        current = spare ?? Buffer.allocUnsafe(size);
        filled = 0;
      }
      const take = Math.min(size - filled, chunk.byteLength - offset);
      current.set(chunk.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
    }
  }
  if (filled === 0 && pending !== undefined) {
    yield { block: pending, last: true };
    return;
  }
  if (pending !== undefined) yield { block: pending, last: false };
  yield { block: current.subarray(0, filled), last: true };
}

/** Encrypts a plaintext stream: the header, then one sealed segment per `segmentSize` bytes. */
export async function* encryptStream(
  source: AsyncIterable<Uint8Array>,
  key: Buffer,
  header: SegmentHeader,
): AsyncGenerator<Buffer> {
  yield header.bytes;
  // One key object per stream: a raw key makes every cipher import it again (2% of a download's CPU).
  const secret = createSecretKey(key);
  let index = 0;
  for await (const { block, last } of blocks(source, header.segmentSize)) {
    yield* seal(secret, header, index, last, block);
    index += 1;
  }
}

/** Splits the first `size` bytes off a stream; returns them (fewer at end of stream) and the rest. */
async function splitHead(
  source: AsyncIterable<Uint8Array>,
  size: number,
): Promise<{ head: Buffer; rest: AsyncIterable<Uint8Array>; close: () => Promise<void> }> {
  const iterator = source[Symbol.asyncIterator]();
  const parts: Buffer[] = [];
  let length = 0;
  let leftover: Buffer | undefined;
  let finished = false;
  while (length < size) {
    const next = await iterator.next();
    if (next.done === true) {
      finished = true;
      break;
    }
    const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
    const take = Math.min(size - length, chunk.length);
    parts.push(chunk.subarray(0, take));
    length += take;
    if (take < chunk.length) leftover = chunk.subarray(take);
  }
  async function* rest(): AsyncGenerator<Uint8Array> {
    if (leftover !== undefined) yield leftover;
    for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) yield next.value;
    finished = true;
  }
  return {
    head: Buffer.concat(parts, length),
    rest: rest(),
    // The source is iterated by hand, so nothing else ends it: a reader that stops early (a
    // scanner that has seen enough, a client gone mid-download, a bad header) must, or the
    // blob store's file stays open until a garbage collection closes it.
    close: async () => {
      if (!finished) await iterator.return?.();
      finished = true;
    },
  };
}

/**
 * Decrypts a whole stored blob. `expected` is the header recorded in the metadata; the stored
 * header must equal it, so a blob swapped for another encrypted blob is refused.
 */
export async function* decryptStream(
  source: AsyncIterable<Uint8Array>,
  key: Buffer,
  expected: SegmentHeader,
): AsyncGenerator<Buffer> {
  const { head, rest, close } = await splitHead(source, HEADER_SIZE);
  try {
    if (!head.equals(expected.bytes)) throw integrity('Encrypted blob header does not match its metadata');
    const secret = createSecretKey(key);
    let index = 0;
    for await (const { block, last } of blocks(rest, expected.segmentSize + TAG_SIZE)) {
      yield* open(secret, expected, index, last, block);
      index += 1;
    }
  } finally {
    await close();
  }
}

/** Where a plaintext byte range lies in the stored blob. */
export interface SegmentSpan {
  /** First and last segment index. */
  readonly first: number;
  readonly last: number;
  /** Inclusive byte range of the stored blob to read. */
  readonly start: number;
  readonly end: number;
  /** Bytes to drop from the first decrypted segment. */
  readonly skip: number;
}

/** Maps the inclusive plaintext range `start..end` of a `size`-byte plaintext to stored segments. */
export function spanOf(size: number, segmentSize: number, start: number, end: number): SegmentSpan {
  if (start < 0 || end < start || end >= size)
    throw new RangeError(`Range ${start}-${end} outside ${size} bytes`);
  const first = Math.floor(start / segmentSize);
  const last = Math.floor(end / segmentSize);
  const sealed = segmentSize + TAG_SIZE;
  return {
    first,
    last,
    start: HEADER_SIZE + first * sealed,
    end: Math.min(HEADER_SIZE + (last + 1) * sealed, ciphertextSize(size, segmentSize)) - 1,
    skip: start - first * segmentSize,
  };
}

/**
 * Decrypts only the segments of a plaintext range. `source` yields the stored bytes of
 * `span.start..span.end`; output is exactly plaintext bytes `start..end`.
 */
export async function* decryptRange(
  source: AsyncIterable<Uint8Array>,
  key: Buffer,
  header: SegmentHeader,
  size: number,
  start: number,
  end: number,
): AsyncGenerator<Buffer> {
  const span = spanOf(size, header.segmentSize, start, end);
  const finalIndex = segmentCount(size, header.segmentSize) - 1;
  const secret = createSecretKey(key);
  let index = span.first;
  let remaining = end - start + 1;
  for await (const { block } of blocks(source, header.segmentSize + TAG_SIZE)) {
    if (index > span.last) throw integrity('Encrypted blob is longer than recorded');
    let skip = index === span.first ? span.skip : 0;
    for (const piece of open(secret, header, index, index === finalIndex, block)) {
      const plain = piece.subarray(Math.min(skip, piece.length), Math.min(piece.length, skip + remaining));
      skip = Math.max(0, skip - piece.length);
      remaining -= plain.length;
      if (plain.length > 0) yield plain;
    }
    index += 1;
  }
  if (remaining > 0) throw integrity('Encrypted blob is shorter than recorded', { segment: index });
}
