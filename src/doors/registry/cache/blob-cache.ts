import { randomUUID } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, opendir, rename, rm, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { BlobFill, type FillSource, type FillWriter } from './fill.ts';
import type { Digest } from './verify.ts';

export type { Digest } from './verify.ts';

/**
 * A temporary file untouched this long is a leftover of a process killed mid-download: a live
 * download writes at least every uplink `bodyTimeout` (60s by default), and a day leaves room for
 * any configured value and for replicas that share the folder.
 */
export const STALE_TMP_MS = 24 * 60 * 60 * 1000;
/** Entries of `tmp/` looked at per sweep, so that a huge leftover folder cannot stall a start. */
const SWEEP_LIMIT = 10_000;

/** A file being written; `commit` moves it into place under its digest, `abort` removes it. */
export interface BlobWriter extends FillWriter {
  readonly stream: WriteStream;
}

/**
 * Verified downloads on disk, addressed by digest (`<dir>/<algorithm>/<hex[0..2]>/<hex>`). A file
 * appears only after its digest matched: written to a temporary name, renamed on success.
 */
export class BlobCache {
  readonly #dir: string;
  /** Downloads in flight, by `algorithm:hex`; one per digest at a time. */
  readonly #fills = new Map<string, BlobFill>();
  #swept = false;

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

  /**
   * The download of `d` in flight, or a new one that `source` feeds (`joined` tells which). The
   * entry leaves the map when the download settled; a download that already failed (its clients
   * aborted, its temporary file still being removed) is not joined either: the next miss, often
   * the retry of a client it failed, starts afresh instead of getting that failure again. `fail`
   * maps a failure once; every waiter of the download gets that error.
   */
  fill(
    d: Digest,
    source: () => Promise<FillSource>,
    fail: (error: unknown) => Error,
  ): { readonly fill: BlobFill; readonly joined: boolean } {
    const key = `${d.algorithm}:${d.hex}`;
    const running = this.#fills.get(key);
    if (running !== undefined && running.progress().failure === undefined)
      return { fill: running, joined: true };
    const fill = new BlobFill(this, d, source, fail);
    this.#fills.set(key, fill);
    const leave = () => {
      if (this.#fills.get(key) === fill) this.#fills.delete(key);
    };
    fill.done.then(leave, leave);
    return { fill, joined: false };
  }

  /**
   * Removes temporary files older than `maxAgeMs` (by modification time) that a killed process
   * left in `tmp/`; looks at most at SWEEP_LIMIT entries. Returns how many it removed.
   */
  async sweepTmp(maxAgeMs = STALE_TMP_MS, now = Date.now()): Promise<number> {
    let dir: Awaited<ReturnType<typeof opendir>>;
    try {
      dir = await opendir(join(this.#dir, 'tmp'));
    } catch {
      return 0;
    }
    let seen = 0;
    let removed = 0;
    for await (const entry of dir) {
      if (++seen > SWEEP_LIMIT) break;
      if (!entry.isFile()) continue;
      const file = join(dir.path, entry.name);
      // A file that vanished meanwhile (committed or aborted) is not stale.
      const s = await stat(file).catch(() => undefined);
      if (s === undefined || now - s.mtimeMs < maxAgeMs) continue;
      await rm(file, { force: true });
      removed += 1;
    }
    return removed;
  }

  async writer(): Promise<BlobWriter> {
    const tmpDir = join(this.#dir, 'tmp');
    await mkdir(tmpDir, { recursive: true });
    // Once per process, at its first download: not awaited, a sweep never delays a client.
    if (!this.#swept) {
      this.#swept = true;
      this.sweepTmp().catch(() => 0);
    }
    const tmp = join(tmpDir, randomUUID());
    const stream = createWriteStream(tmp, { flags: 'wx' });
    // A write that fails (a full disk, or one queued when abort destroyed the stream) surfaces
    // through commit or is moot after abort; unheard, it would be an uncaught 'error' that ends
    // the process.
    let failure: Error | undefined;
    stream.on('error', (error) => {
      failure ??= error;
    });
    await once(stream, 'open');
    const closed = () =>
      new Promise<void>((resolve) => {
        if (stream.closed) resolve();
        else stream.once('close', () => resolve());
      });
    return {
      path: tmp,
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
