import { type FileHandle, open } from 'node:fs/promises';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Digest, VerifyingStream } from './verify.ts';

/** A file being written; `commit` moves it into place under its digest, `abort` removes it. */
export interface FillWriter {
  /** The temporary file, created before the writer is returned. */
  readonly path: string;
  readonly stream: Writable;
  commit(digest: Digest): Promise<void>;
  abort(): Promise<void>;
}

/** The part of the blob cache a fill uses. */
export interface FillStore {
  path(d: Digest): string;
  size(d: Digest): Promise<number | undefined>;
  writer(): Promise<FillWriter>;
}

/** The upstream answer a fill copies: its body and, when declared, its length. */
export interface FillSource {
  readonly body: Readable;
  readonly length?: number;
}

const READ_CHUNK = 64 * 1024;

/**
 * One download of a file into the blob cache, shared by every request that misses the same
 * digest while it runs. The upstream body goes through the digest check into a temporary file at
 * the uplink's pace; clients never apply backpressure to it, so a slow or stalled client cannot
 * hold back the others, and a client that leaves does not stop it: it always runs to its end
 * (the next request for the file, often that client's retry, is then a hit). `tail()` streams the
 * verified prefix of that file as it grows; `done` settles once the file is in the cache.
 */
export class BlobFill {
  /** Resolves when the uplink answered with a body (its declared length); rejects like `done`. */
  readonly ready: Promise<number | undefined>;
  /** Resolves with the size once the verified file is in the cache; rejects with the mapped failure. */
  readonly done: Promise<number>;
  readonly #digest: Digest;
  readonly #final: string;
  #tmp: string | undefined;
  /** Bytes that passed the digest check and are on disk; the last chunk only once verified. */
  #written = 0;
  #verified = false;
  #failure: Error | undefined;
  readonly #waiting = new Set<() => void>();

  readonly #ready = Promise.withResolvers<number | undefined>();
  readonly #done = Promise.withResolvers<number>();

  constructor(
    store: FillStore,
    digest: Digest,
    source: () => Promise<FillSource>,
    fail: (e: unknown) => Error,
  ) {
    this.#digest = digest;
    this.#final = store.path(digest);
    this.ready = this.#ready.promise;
    this.done = this.#done.promise;
    // Either may have no listener (a fill whose only client left); tails read #failure instead.
    this.ready.catch(() => undefined);
    this.done.catch(() => undefined);
    void this.#settle(store, source, fail);
  }

  async #settle(store: FillStore, source: () => Promise<FillSource>, fail: (e: unknown) => Error) {
    try {
      const size = await this.#run(store, source, fail);
      this.#ready.resolve(size);
      this.#done.resolve(size);
    } catch (error) {
      this.#ready.reject(error);
      this.#done.reject(error);
    }
    this.#wake();
  }

  async #run(
    store: FillStore,
    source: () => Promise<FillSource>,
    fail: (e: unknown) => Error,
  ): Promise<number> {
    let writer: FillWriter | undefined;
    try {
      // A request that saw no file may join only after an earlier fill left the in-flight map.
      const cached = await store.size(this.#digest);
      if (cached !== undefined) {
        this.#written = cached;
        this.#verified = true;
        return cached;
      }
      writer = await store.writer();
      this.#tmp = writer.path;
      const upstream = await source();
      this.#ready.resolve(upstream.length);
      const file = writer.stream;
      const sink = new Writable({
        write: (chunk: Buffer, _encoding, callback) => {
          file.write(chunk, (error) => {
            if (error == null) {
              this.#written += chunk.length;
              this.#wake();
            }
            callback(error);
          });
        },
      });
      await pipeline(upstream.body, new VerifyingStream(this.#digest), sink);
      this.#verified = true;
      this.#wake();
      await writer.commit(this.#digest);
      return this.#written;
    } catch (error) {
      // Set before the cleanup awaits, so that tails abort their clients at once.
      this.#failure = fail(error);
      this.#wake();
      await writer?.abort();
      throw this.#failure;
    }
  }

  #wake(): void {
    const waiting = [...this.#waiting];
    this.#waiting.clear();
    for (const w of waiting) w();
  }

  /**
   * The file's bytes as they pass the digest check. The check holds back the last chunk until
   * the whole digest matched, so a tail never completes a body that does not match: on a failure
   * it errors instead of ending (the HTTP layer then aborts the connection).
   */
  tail(): Readable {
    return new FillTail(this);
  }

  /** Bytes verified and on disk so far, whether the whole file matched, and the failure if any. */
  progress(): { readonly written: number; readonly verified: boolean; readonly failure?: Error } {
    return {
      written: this.#written,
      verified: this.#verified,
      ...(this.#failure === undefined ? {} : { failure: this.#failure }),
    };
  }

  /** Calls `wake` once at the next change of `progress()` (or stops, with `subscribe` false). */
  onProgress(wake: () => void, subscribe: boolean): void {
    if (subscribe) this.#waiting.add(wake);
    else this.#waiting.delete(wake);
  }

  /** Opens the file a tail reads: the temporary one while it exists, else the cached one. */
  async openRead(): Promise<FileHandle> {
    if (this.#tmp !== undefined) {
      try {
        // Once open, the handle outlives the rename into the cache (same file) and a removal.
        return await open(this.#tmp, 'r');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    await this.done;
    return open(this.#final, 'r');
  }
}

/** Reads a fill's file up to the verified, written length, waiting for it to grow. */
class FillTail extends Readable {
  readonly #fill: BlobFill;
  #file: FileHandle | undefined;
  #position = 0;
  #reading = false;
  readonly #pump = (): void => this.#next();

  constructor(fill: BlobFill) {
    super();
    this.#fill = fill;
  }

  override _construct(callback: (error?: Error | null) => void): void {
    void this.#open(callback);
  }

  async #open(callback: (error?: Error | null) => void): Promise<void> {
    try {
      this.#file = await this.#fill.openRead();
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback();
  }

  override _read(): void {
    this.#next();
  }

  #next(): void {
    const file = this.#file;
    if (this.#reading || file === undefined || this.destroyed) return;
    const { written, verified, failure } = this.#fill.progress();
    if (failure !== undefined) {
      this.destroy(failure);
      return;
    }
    const available = written - this.#position;
    if (available <= 0) {
      if (verified) this.push(null);
      else this.#fill.onProgress(this.#pump, true);
      return;
    }
    void this.#read(file, Math.min(available, READ_CHUNK));
  }

  async #read(file: FileHandle, length: number): Promise<void> {
    this.#reading = true;
    let bytesRead: number;
    let buffer: Buffer;
    try {
      ({ bytesRead, buffer } = await file.read(Buffer.allocUnsafe(length), 0, length, this.#position));
    } catch (error) {
      this.destroy(error as Error);
      return;
    } finally {
      this.#reading = false;
    }
    if (this.destroyed) return;
    if (bytesRead === 0) {
      this.destroy(new Error(`Cache file ends at ${this.#position} bytes, before its verified length`));
      return;
    }
    this.#position += bytesRead;
    if (this.push(buffer.subarray(0, bytesRead))) this.#next();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#fill.onProgress(this.#pump, false);
    const file = this.#file;
    this.#file = undefined;
    void this.#close(file, () => callback(error));
  }

  async #close(file: FileHandle | undefined, closed: () => void): Promise<void> {
    // A failed close leaves nothing to do: the handle is gone either way.
    await file?.close().catch(() => undefined);
    closed();
  }
}
