/**
 * The cached form of a filtered metadata response: the identity bytes plus gzip and brotli
 * encodings made once, a strong ETag, and a small JSON header. Serving a hit is a buffer write.
 */
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { brotliCompress, brotliCompressSync, constants, gunzipSync, gzip, gzipSync } from 'node:zlib';

/** Facts stored with the bytes. */
export interface EntryMeta {
  readonly contentType: string;
  /** Epoch ms when the upstream answered. */
  readonly fetchedAt: number;
  readonly uplink: string;
  /** Versions refused when the entry was made (count), for the `X-Gatehouse-Filtered` header. */
  readonly filtered: number;
  /** Versions listed upstream. */
  readonly total: number;
  /** A one-line explanation of what was hidden, sent as `npm-notice`. */
  readonly notice?: string;
  /**
   * The gzip form was spliced from fragments on a cold miss (`gzipEntry`); the whole-document
   * gzip replaces it later, so the two carry different ETags.
   */
  readonly splicedGzip?: boolean;
}

export interface MetadataEntry {
  readonly meta: EntryMeta;
  readonly etag: string;
  readonly identity: Buffer;
  readonly gzip: Buffer;
  readonly br: Buffer;
}

// Brotli quality 5 compresses a 10 MB packument in tens of milliseconds and still beats gzip -6;
// quality 11 would take seconds per miss.
const BROTLI = { params: { [constants.BROTLI_PARAM_QUALITY]: 5 } };

/** A strong ETag over the identity bytes (RFC 9110 §8.8.3). */
export const etagOf = (identity: Buffer): string =>
  `"${createHash('sha256').update(identity).digest('base64url').slice(0, 32)}"`;

/** Compresses on the libuv thread pool (main thread). */
export async function makeEntry(meta: EntryMeta, text: string | Buffer): Promise<MetadataEntry> {
  const identity = Buffer.isBuffer(text) ? text : Buffer.from(text);
  const [gz, br] = await Promise.all([
    promisify(gzip)(identity),
    promisify(brotliCompress)(identity, BROTLI),
  ]);
  return { meta, etag: etagOf(identity), identity, gzip: gz, br };
}

/**
 * An entry with only its gzip encoding so far (empty identity and brotli): a cold miss of a
 * large document answers with gzip spliced from pieces compressed during the download, and the
 * other forms replace the entry when they are ready. `identityOf` decompresses meanwhile.
 */
export function gzipEntry(meta: EntryMeta, gz: Buffer, etag: string): MetadataEntry {
  return {
    meta: { ...meta, splicedGzip: true },
    etag,
    identity: Buffer.alloc(0),
    gzip: gz,
    br: Buffer.alloc(0),
  };
}

/** Whether the entry still lacks its identity bytes (see `gzipEntry`). */
export const lacksIdentity = (e: MetadataEntry): boolean => e.identity.length === 0 && e.gzip.length > 0;

/** The identity bytes, decompressed from gzip for an entry that has only that yet. */
export const identityOf = (e: MetadataEntry): Buffer => (lacksIdentity(e) ? gunzipSync(e.gzip) : e.identity);

/** Brotli at the quality every entry uses (synchronous: for the packument worker). */
export const brotliOf = (identity: Buffer): Buffer => brotliCompressSync(identity, BROTLI);

/** Gzip at the level every entry uses (synchronous: for the packument worker). */
export const gzipOf = (identity: Buffer): Buffer => gzipSync(identity);

/** Frames an entry as `[u32 len][header JSON][u32 len][identity][u32 len][gzip][u32 len][br]`. */
export function encodeEntry(e: MetadataEntry): Buffer {
  const header = Buffer.from(JSON.stringify({ meta: e.meta, etag: e.etag }));
  const parts = [header, e.identity, e.gzip, e.br];
  const out = Buffer.allocUnsafe(parts.reduce((n, p) => n + 4 + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.writeUInt32BE(p.length, at);
    p.copy(out, at + 4);
    at += 4 + p.length;
  }
  return out;
}

/** Reads a framed entry (zero-copy views); undefined when the bytes are not a valid frame. */
export function decodeEntry(buf: Buffer): MetadataEntry | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (let i = 0; i < 4; i++) {
    if (at + 4 > buf.length) return undefined;
    const len = buf.readUInt32BE(at);
    if (at + 4 + len > buf.length) return undefined;
    parts.push(buf.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  if (at !== buf.length) return undefined;
  try {
    const header = JSON.parse((parts[0] as Buffer).toString('utf8')) as { meta: EntryMeta; etag: string };
    return {
      meta: header.meta,
      etag: header.etag,
      identity: parts[1] as Buffer,
      gzip: parts[2] as Buffer,
      br: parts[3] as Buffer,
    };
  } catch {
    return undefined;
  }
}

/** Picks the encoding a client accepts (br, then gzip, then identity), honouring `q=0`. */
export function chooseEncoding(
  acceptEncoding: string | undefined,
  available: { readonly br: boolean; readonly gzip: boolean } = { br: true, gzip: true },
): 'br' | 'gzip' | 'identity' {
  if (acceptEncoding === undefined) return 'identity';
  const accepted = new Map<string, number>();
  for (const part of acceptEncoding.toLowerCase().split(',')) {
    const [coding, ...params] = part.trim().split(';');
    const q = params.map((p) => /^\s*q=([\d.]+)/.exec(p)?.[1]).find((x) => x !== undefined);
    accepted.set((coding ?? '').trim(), q === undefined ? 1 : Number(q));
  }
  const ok = (c: string) => (accepted.get(c) ?? accepted.get('*') ?? 0) > 0;
  if (available.br && ok('br')) return 'br';
  if (available.gzip && ok('gzip')) return 'gzip';
  return 'identity';
}
