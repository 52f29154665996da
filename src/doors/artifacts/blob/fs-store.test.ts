import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, utimesSync } from 'node:fs';
import { randomBytes, randomInt } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { blobStoreContract } from './contract.ts';
import { createFsBlobStore } from './fs-store.ts';

const roots: string[] = [];
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});
const freshRoot = () => {
  const root = mkdtempSync(join(tmpdir(), 'gh-blob-'));
  roots.push(root);
  return root;
};

blobStoreContract('fs', async () => createFsBlobStore({ root: freshRoot() }), { large: 3 * 1024 * 1024 });

void it('fs store sweeps only staging files older than the cutoff', async () => {
  const root = freshRoot();
  const store = createFsBlobStore({ root });
  await store.ping();
  writeFileSync(join(root, 'staging', 'old.part'), 'x');
  writeFileSync(join(root, 'staging', 'new.part'), 'y');
  const past = new Date(Date.now() - 3_600_000);
  utimesSync(join(root, 'staging', 'old.part'), past, past);
  assert.equal(await store.sweepStaging(60_000), 1);
  assert.deepEqual(readdirSync(join(root, 'staging')), ['new.part']);
});

/** Yields `data` in pieces of random sizes, some larger than the write stream's 1 MiB buffer. */
async function* ragged(data: Buffer): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < data.length; ) {
    const size = Math.min(data.length - at, randomInt(1, 2_500_000));
    yield data.subarray(at, at + size);
    at += size;
  }
}

/** Yields `size` ragged bytes, then fails as a client that goes away would. */
async function* failingAfter(size: number): AsyncGenerator<Uint8Array> {
  yield* ragged(randomBytes(size));
  throw new Error('client went away');
}

void it('fs store writes every byte of ragged pieces at its place', async () => {
  const root = freshRoot();
  const store = createFsBlobStore({ root });
  // Over ten times the write buffer, not a multiple of it, in pieces of random sizes.
  const data = randomBytes(10 * 1024 * 1024 + 12_345);
  const stat = await store.put('ragged/blob', ragged(data));
  assert.equal(stat.size, data.length);
  assert.ok(readFileSync(join(root, 'blobs', 'ragged', 'blob')).equals(data));
  assert.deepEqual(readdirSync(join(root, 'staging')), []);
});

void it('fs store removes the staged file when the source fails after several writes', async () => {
  const root = freshRoot();
  const store = createFsBlobStore({ root });
  await assert.rejects(store.put('half', failingAfter(6 * 1024 * 1024)), /client went away/);
  assert.deepEqual(readdirSync(join(root, 'staging')), []);
  assert.equal(await store.stat('half'), undefined);
});
