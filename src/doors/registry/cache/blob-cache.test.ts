import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { eventually } from '#testing/eventually';
import { withTempDir } from '#testing/temp-dir';
import { Readable } from 'node:stream';
import { BlobCache, STALE_TMP_MS } from './blob-cache.ts';

const bytes = Buffer.from('verified tarball bytes');
const digest = { algorithm: 'sha256', hex: createHash('sha256').update(bytes).digest('hex') } as const;

/** A leftover of a killed process: a temporary file last written `ageMs` ago. */
async function leftover(dir: string, name: string, ageMs: number): Promise<void> {
  await mkdir(join(dir, 'tmp'), { recursive: true });
  await writeFile(join(dir, 'tmp', name), 'partial');
  const when = new Date(Date.now() - ageMs);
  await utimes(join(dir, 'tmp', name), when, when);
}

void describe('BlobCache temporary files', () => {
  void it('sweeps only temporary files older than the stale age, never cached blobs', async () => {
    await withTempDir('gatehouse-blobs-', async (dir) => {
      const cache = new BlobCache(dir);
      const writer = await cache.writer();
      writer.stream.write(bytes);
      await writer.commit(digest);
      await leftover(dir, 'killed', STALE_TMP_MS + 60_000);
      await leftover(dir, 'live', 60_000);
      assert.equal(await cache.sweepTmp(), 1);
      assert.deepEqual(await readdir(join(dir, 'tmp')), ['live']);
      assert.equal(await cache.size(digest), bytes.length);
    });
  });

  void it('sweeps leftovers at the first download of a process', async () => {
    await withTempDir('gatehouse-blobs-', async (dir) => {
      await leftover(dir, 'killed', STALE_TMP_MS + 60_000);
      const cache = new BlobCache(dir);
      const writer = await cache.writer();
      await eventually(async () => (await readdir(join(dir, 'tmp'))).includes('killed'), false, {
        timeoutMs: 5000,
        message: 'the stale temporary file is removed',
      });
      assert.ok((await readdir(join(dir, 'tmp'))).length === 1, 'the live writer keeps its file');
      await writer.abort();
    });
  });
});

const fail = (error: unknown) => new Error(`mapped: ${(error as Error).message}`);
// oxlint-disable unicorn/no-array-fill-with-reference-type -- BlobCache.fill is no Array#fill.

void describe('BlobCache shared downloads', () => {
  void it('joins a download in flight, but starts afresh once the one in flight has failed', async () => {
    await withTempDir('gatehouse-blobs-', async (dir) => {
      const cache = new BlobCache(dir);
      const tampered = Buffer.from(bytes);
      tampered[0] = (tampered[0] ?? 0) ^ 0xff;
      const gate = Promise.withResolvers<void>();
      const first = cache.fill(
        digest,
        async () => {
          await gate.promise;
          return { body: Readable.from([tampered]), length: tampered.length };
        },
        fail,
      );
      assert.equal(first.joined, false);
      // A miss while the first download runs shares it.
      const second = cache.fill(digest, () => Promise.reject(new Error('not asked')), fail);
      assert.equal(second.joined, true);
      assert.equal(second.fill, first.fill);
      // At the first news of its failure (before its clean-up settles it), a new miss starts
      // its own download, which sends the right bytes.
      let retry: ReturnType<BlobCache['fill']> | undefined;
      const onFailure = () => {
        if (first.fill.progress().failure === undefined) first.fill.onProgress(onFailure, true);
        else retry ??= cache.fill(digest, async () => ({ body: Readable.from([bytes]) }), fail);
      };
      first.fill.onProgress(onFailure, true);
      gate.resolve();
      await assert.rejects(first.fill.done, /mapped: /);
      assert.ok(retry !== undefined);
      assert.equal(retry.joined, false);
      assert.equal(await retry.fill.done, bytes.length);
      assert.equal(await cache.size(digest), bytes.length);
    });
  });
});
