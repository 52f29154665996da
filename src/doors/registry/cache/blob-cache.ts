import { randomUUID } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** A content digest: algorithm and lower-case hex value. */
export interface Digest {
  readonly algorithm: 'sha512' | 'sha384' | 'sha256' | 'sha1';
  readonly hex: string;
}

/** A file being written; `commit` moves it into place under its digest, `abort` removes it. */
export interface BlobWriter {
  readonly stream: WriteStream;
  commit(digest: Digest): Promise<void>;
  abort(): Promise<void>;
}

/**
 * Verified downloads on disk, addressed by digest (`<dir>/<algorithm>/<hex[0..2]>/<hex>`). A file
 * appears only after its digest matched: written to a temporary name, renamed on success.
 */
export class BlobCache {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  path(d: Digest): string {
    if (!/^[0-9a-f]{40,128}$/.test(d.hex)) throw new RangeError(`Invalid digest "${d.hex}"`);
    return join(this.#dir, d.algorithm, d.hex.slice(0, 2), d.hex);
  }

  /** The size of a cached blob, or undefined when absent. */
  async size(d: Digest): Promise<number | undefined> {
    try {
      return (await stat(this.path(d))).size;
    } catch {
      return undefined;
    }
  }

  async writer(): Promise<BlobWriter> {
    const tmpDir = join(this.#dir, 'tmp');
    await mkdir(tmpDir, { recursive: true });
    const tmp = join(tmpDir, randomUUID());
    const stream = createWriteStream(tmp, { flags: 'wx' });
    // A write that fails (a full disk, or one queued when abort destroyed the stream) surfaces
    // through commit or is moot after abort; unheard, it would be an uncaught 'error' that ends
    // the process.
    let failure: Error | undefined;
    stream.on('error', (error) => {
      failure ??= error;
    });
    const closed = () =>
      new Promise<void>((resolve) => {
        if (stream.closed) resolve();
        else stream.once('close', () => resolve());
      });
    return {
      stream,
      commit: async (d) => {
        await new Promise<void>((resolve, reject) => {
          if (failure !== undefined) reject(failure);
          else if (stream.writableFinished) resolve();
          else stream.end((error?: Error | null) => (error ? reject(error) : resolve()));
        });
        await closed();
        const target = this.path(d);
        await mkdir(join(target, '..'), { recursive: true });
        await rename(tmp, target);
      },
      abort: async () => {
        stream.destroy();
        await closed();
        await rm(tmp, { force: true });
      },
    };
  }

  /** Removes every cached blob (used by the invalidation command with `--files`). */
  async clear(): Promise<void> {
    await rm(this.#dir, { recursive: true, force: true });
  }
}
