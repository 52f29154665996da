/**
 * The record format the NATS driver stores: NATS KV keeps only bytes, so expiry, metadata and
 * the chunk list of large values travel in a small header before the value.
 *
 *   "GHK" 0x01 | u32 big-endian header length | header JSON (UTF-8) | value bytes
 */

/** Where the chunks of a value too large for one message live. */
export interface ChunkRef {
  readonly id: string;
  readonly count: number;
  readonly size: number;
}

export interface Envelope {
  /**
   * The entry's version when it differs from the record's stream revision: a rewrite of the
   * expiry keeps the version of the write that stored the value.
   */
  readonly version?: number;
  readonly expiresAt?: number;
  readonly metadata?: string;
  readonly chunks?: ChunkRef;
  readonly value: Uint8Array;
}

const MAGIC = [0x47, 0x48, 0x4b, 0x01];
const PREFIX = MAGIC.length + 4;

/** Serialises an envelope. */
export function encodeEnvelope(e: Envelope): Uint8Array {
  const header = Buffer.from(
    JSON.stringify({
      ...(e.version === undefined ? {} : { v: e.version }),
      ...(e.expiresAt === undefined ? {} : { e: e.expiresAt }),
      ...(e.metadata === undefined || e.metadata === '' ? {} : { m: e.metadata }),
      ...(e.chunks === undefined ? {} : { c: e.chunks }),
    }),
  );
  const out = Buffer.allocUnsafe(PREFIX + header.length + e.value.length);
  out.set(MAGIC, 0);
  out.writeUInt32BE(header.length, MAGIC.length);
  out.set(header, PREFIX);
  out.set(e.value, PREFIX + header.length);
  return out;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Parses an envelope; undefined for anything that is not one (foreign or damaged data). */
export function decodeEnvelope(data: Uint8Array): Envelope | undefined {
  if (data.length < PREFIX || MAGIC.some((b, i) => data[i] !== b)) return undefined;
  const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
  const length = buf.readUInt32BE(MAGIC.length);
  if (PREFIX + length > buf.length) return undefined;
  let header: unknown;
  try {
    header = JSON.parse(buf.subarray(PREFIX, PREFIX + length).toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return undefined;
  const { v, e, m, c } = header as Record<string, unknown>;
  if (v !== undefined && !isCount(v)) return undefined;
  if (e !== undefined && !isCount(e)) return undefined;
  if (m !== undefined && typeof m !== 'string') return undefined;
  let chunks: ChunkRef | undefined;
  if (c !== undefined) {
    const ref = c as Record<string, unknown> | null;
    if (typeof ref !== 'object' || ref === null) return undefined;
    if (typeof ref['id'] !== 'string' || !/^[a-f0-9]{32}$/.test(ref['id'])) return undefined;
    if (!isCount(ref['count']) || !isCount(ref['size'])) return undefined;
    chunks = { id: ref['id'], count: ref['count'], size: ref['size'] };
  }
  return {
    ...(v === undefined ? {} : { version: v }),
    ...(e === undefined ? {} : { expiresAt: e }),
    ...(m === undefined ? {} : { metadata: m }),
    ...(chunks === undefined ? {} : { chunks }),
    value: buf.subarray(PREFIX + length),
  };
}
