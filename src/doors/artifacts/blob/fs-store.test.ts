import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, utimesSync } from 'node:fs';
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
