import type { Readable } from 'node:stream';

/** What a blob store knows about one committed blob. */
export interface BlobStat {
  readonly key: string;
  /** Stored size in bytes (ciphertext when the blob is encrypted). */
  readonly size: number;
  /** Last modification in epoch milliseconds. */
  readonly modifiedAt: number;
}

/** An inclusive byte range, as in an HTTP `Range` header. */
export interface ByteRange {
  readonly start: number;
  /** Inclusive end offset. */
  readonly end: number;
}

/** Options of a write. */
export interface PutOptions {
  /** Aborting stops the write and removes its staged bytes. */
  readonly signal?: AbortSignal;
}

/**
 * Stores opaque bytes under keys. A `put` first writes to a staging area and only at the end
 * makes the blob visible under its key in one atomic step (rename, or S3 multipart completion),
 * so a reader never sees a partial blob and a crash leaves only staging leftovers that `sweep`
 * removes.
 */
export interface BlobStore {
  /** `fs` or `s3`. */
  readonly kind: string;
  /** Streams `body` to staging, makes it durable, then commits it under `key`. */
  put(key: string, body: AsyncIterable<Uint8Array>, options?: PutOptions): Promise<BlobStat>;
  /** Reads a committed blob, or the inclusive `range` of it; undefined when the key is absent. */
  get(key: string, range?: ByteRange): Promise<Readable | undefined>;
  stat(key: string): Promise<BlobStat | undefined>;
  /** Removes a committed blob; true when it existed. */
  delete(key: string): Promise<boolean>;
  /** Lists committed blobs whose key starts with `prefix`, for sweeps. */
  list(prefix?: string): AsyncIterable<BlobStat>;
  /** Removes staging leftovers (crashed or abandoned writes) older than `olderThanMs`; returns how many. */
  sweepStaging(olderThanMs: number): Promise<number>;
  /** Reports whether the store answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Keys are slash-separated lowercase names; nothing that could escape a folder or bucket prefix. */
export const BLOB_KEY_RE = /^[a-z0-9][a-z0-9._-]*(?:\/[a-z0-9][a-z0-9._-]*)*$/;

/** Throws a RangeError for a key that the stores do not accept (a programmer mistake). */
export function assertBlobKey(key: string): void {
  if (!BLOB_KEY_RE.test(key) || key.includes('..') || key.length > 512) {
    throw new RangeError(`Invalid blob key "${key}"`);
  }
}
