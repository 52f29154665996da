import { Sha256 } from './sha256.ts';

/** Files up to this size go to WebCrypto in one piece (native and fast); larger ones are streamed. */
export const WEBCRYPTO_LIMIT = 64 * 1024 * 1024;
/** Chunk size when streaming. */
export const CHUNK_SIZE = 4 * 1024 * 1024;

const toHex = (buffer: ArrayBuffer) =>
  Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');

export interface HashOptions {
  readonly onProgress?: (hashedBytes: number) => void;
  readonly signal?: AbortSignal;
  /** Override for tests: which size switches to the streamed hash. */
  readonly webCryptoLimit?: number;
  readonly chunkSize?: number;
}

/**
 * The SHA-256 of a file, computed in the browser before upload so the server can refuse a body
 * that changed on the way. Large files are read in slices so memory stays flat.
 */
export async function sha256OfFile(file: Blob, options: HashOptions = {}): Promise<string> {
  const limit = options.webCryptoLimit ?? WEBCRYPTO_LIMIT;
  const subtle = globalThis.crypto?.subtle;
  if (file.size <= limit && subtle !== undefined) {
    const digest = await subtle.digest('SHA-256', await file.arrayBuffer());
    options.onProgress?.(file.size);
    return toHex(digest);
  }
  const hash = new Sha256();
  const chunk = options.chunkSize ?? CHUNK_SIZE;
  for (let offset = 0; offset < file.size; offset += chunk) {
    options.signal?.throwIfAborted();
    const part = new Uint8Array(await file.slice(offset, offset + chunk).arrayBuffer());
    hash.update(part);
    options.onProgress?.(Math.min(file.size, offset + chunk));
  }
  if (file.size === 0) options.onProgress?.(0);
  return hash.hex();
}
