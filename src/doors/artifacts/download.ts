import { createHash } from 'node:crypto';
import { GatewayError } from '#core/errors';
import type { ArtifactContext } from './context.ts';
import { decryptRange, decryptStream, parseHeader, spanOf } from './crypto/segmented-aead.ts';
import type { ArtifactTables, BlobRow, ItemRow } from './store/schema.ts';

/** An inclusive plaintext byte range. */
export interface PlainRange {
  readonly start: number;
  readonly end: number;
}

/**
 * Parses a `Range` header (RFC 9110 §14.1.2) against a representation of `size` bytes. Returns
 * undefined when the header is absent, malformed or asks for several ranges (the full body is
 * then served, which §14.2 allows); throws GW_ERR_ARTIFACTS_RANGE_NOT_SATISFIABLE when it
 * names no byte of the artifact.
 */
export function parseRange(header: string | undefined, size: number): PlainRange | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (match === null) return undefined;
  const [, a = '', b = ''] = match;
  if (a === '' && b === '') return undefined;
  let start: number;
  let end: number;
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0) throw unsatisfiable(size);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
    if (b !== '' && Number(b) < start) return undefined;
  }
  if (!Number.isSafeInteger(start) || start >= size || end < start) throw unsatisfiable(size);
  return { start, end };
}

function unsatisfiable(size: number): GatewayError {
  return new GatewayError('GW_ERR_ARTIFACTS_RANGE_NOT_SATISFIABLE', {
    message: `Range is outside the artifact of ${size} bytes`,
    details: { size },
    headers: { 'content-range': `bytes */${size}` },
  });
}

/** One entity-tag of a list, `W/"…"` or `"…"`, after any empty elements, and the comma or end after it. */
const ENTITY_TAG = /[\s,]*(W\/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*(?:,|$)/y;

/**
 * Whether an `If-Match` or `If-None-Match` field value names the strong ETag `etag`
 * (RFC 9110 §13.1.1, §13.1.2): `*` names any current representation, else it is a
 * comma-separated list of entity-tags. The strong comparison (If-Match) needs a tag that is
 * not weak with the same opaque tag; the weak comparison (If-None-Match) ignores `W/`. A list
 * element that is no entity-tag ends the list: it and what follows match nothing.
 */
export function etagListMatches(field: string, etag: string, comparison: 'strong' | 'weak'): boolean {
  if (field.trim() === '*') return true;
  const opaque = etag.slice(1, -1);
  ENTITY_TAG.lastIndex = 0;
  while (ENTITY_TAG.lastIndex < field.length) {
    const match = ENTITY_TAG.exec(field);
    if (match === null) return false;
    if (match[2] === opaque && (comparison === 'weak' || match[1] === undefined)) return true;
  }
  return false;
}

/** Looks up the blob row of an item's digest. */
export async function blobOf(ctx: ArtifactContext, digest: string): Promise<BlobRow> {
  const row = await ctx.db
    .kysely<ArtifactTables>()
    .selectFrom('artifacts_blobs')
    .selectAll()
    .where('digest', '=', digest)
    .executeTakeFirst();
  if (row === undefined) {
    throw new GatewayError('GW_ERR_ARTIFACTS_KEY_UNAVAILABLE', {
      message: `No stored blob for digest "${digest}"`,
    });
  }
  return row;
}

async function* verifyDigest(source: AsyncIterable<Buffer>, expected: string): AsyncGenerator<Buffer> {
  const hash = createHash('sha256');
  for await (const chunk of source) {
    hash.update(chunk);
    yield chunk;
  }
  const actual = hash.digest('hex');
  if (actual !== expected) {
    throw new GatewayError('GW_ERR_ARTIFACTS_INTEGRITY', {
      message: `Stored artifact has sha256 "${actual}", expected "${expected}"`,
      details: { expected, actual },
    });
  }
}

/**
 * Opens the plaintext of an artifact, or of a range of it. A whole read is also checked against
 * the recorded SHA-256; a range read is covered by the per-segment tags. Integrity failures
 * surface as stream errors, so the response is cut short rather than completed with bad bytes.
 */
export async function openPlaintext(
  ctx: ArtifactContext,
  item: Pick<ItemRow, 'digest' | 'size'>,
  range?: PlainRange,
): Promise<AsyncGenerator<Buffer>> {
  const blob = await blobOf(ctx, item.digest);
  const header = parseHeader(Buffer.from(blob.header, 'base64'));
  const key = ctx.keyring.unwrap({ keyId: blob.key_id, wrapped: Buffer.from(blob.wrapped_key, 'base64') });
  const size = Number(blob.size);
  const missing = () =>
    new GatewayError('GW_ERR_ARTIFACTS_INTEGRITY', {
      message: `Stored blob of "${item.digest}" is missing`,
      details: { digest: item.digest },
    });
  if (range === undefined) {
    const stream = await ctx.blobs.get(blob.blob_key);
    if (stream === undefined) throw missing();
    return verifyDigest(decryptStream(stream, key, header), item.digest);
  }
  const span = spanOf(size, header.segmentSize, range.start, range.end);
  const stream = await ctx.blobs.get(blob.blob_key, { start: span.start, end: span.end });
  if (stream === undefined) throw missing();
  return decryptRange(stream, key, header, size, range.start, range.end);
}
