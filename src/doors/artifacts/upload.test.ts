import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openPlaintext, parseRange } from './download.ts';
import { deleteArtifact, getArtifact, listArtifacts, rotateKeys } from './service.ts';
import { sweep } from './sweep.ts';
import { createTestContext } from './test-context.ts';
import { uploadArtifact } from './upload.ts';
import { createKeyring } from './crypto/keyring.ts';

async function* body(data: Buffer, chunk = 50_000): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
}

async function drain(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of source) out.push(Buffer.from(c));
  return Buffer.concat(out);
}

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const code = (expected: string) => (error: unknown) => (error as { code?: string }).code === expected;
const base = { repository: 'team', name: 'tool', version: '1.0.0', actor: 'user:test' };

function blobFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else out.push(join(dir, e.name));
    }
  };
  walk(join(root, 'blobs'));
  return out;
}

void describe('upload and download', () => {
  void it('stores encrypted bytes, reads them back whole and by range', async () => {
    await using t = await createTestContext();
    const data = randomBytes(700_000);
    const { item } = await uploadArtifact(t.ctx, {
      ...base,
      body: body(data),
      expectedSha256: sha(data),
      contentLength: data.length,
    });
    assert.equal(item.digest, sha(data));
    assert.equal(item.status, 'quarantined');
    const stored = blobFiles(t.root).filter((f) => f.includes('/blobs/b/'));
    assert.equal(stored.length, 1);
    // Encrypted at rest: the plaintext never appears in the stored file.
    assert.equal(readFileSync(stored[0] ?? '').includes(data.subarray(1000, 1064)), false);
    assert.deepEqual(await drain(await openPlaintext(t.ctx, item)), data);
    assert.deepEqual(
      await drain(await openPlaintext(t.ctx, item, { start: 300_000, end: 300_009 })),
      data.subarray(300_000, 300_010),
    );
  });

  void it('rejects a digest mismatch and leaves nothing behind', async () => {
    await using t = await createTestContext();
    const data = randomBytes(10_000);
    await assert.rejects(
      uploadArtifact(t.ctx, { ...base, body: body(data), expectedSha256: 'a'.repeat(64) }),
      code('GW_ERR_ARTIFACTS_DIGEST_MISMATCH'),
    );
    assert.equal((await listArtifacts(t.ctx, {})).total, 0);
    assert.deepEqual(
      blobFiles(t.root).filter((f) => f.includes('/b/')),
      [],
    );
  });

  void it('rejects a body shorter or longer than Content-Length', async () => {
    await using t = await createTestContext();
    const data = randomBytes(10_000);
    await assert.rejects(
      uploadArtifact(t.ctx, { ...base, body: body(data), contentLength: 10_001 }),
      code('GW_ERR_ARTIFACTS_SIZE_MISMATCH'),
    );
    await assert.rejects(
      uploadArtifact(t.ctx, { ...base, body: body(data), contentLength: 9_999 }),
      code('GW_ERR_ARTIFACTS_SIZE_MISMATCH'),
    );
    assert.equal((await listArtifacts(t.ctx, {})).total, 0);
    assert.deepEqual(
      blobFiles(t.root).filter((f) => f.includes('/b/')),
      [],
    );
  });

  void it('rejects invalid coordinates, duplicates and oversize artifacts', async () => {
    await using t = await createTestContext({ maxArtifactSize: 1000 });
    for (const bad of [
      { repository: '../x' },
      { name: '../../etc/passwd' },
      { name: 'a/b' },
      { version: '' },
      { expectedSha256: 'XYZ' },
    ]) {
      await assert.rejects(
        uploadArtifact(t.ctx, { ...base, ...bad, body: body(Buffer.from('x')) }),
        code('GW_ERR_ARTIFACTS_UPLOAD_INVALID'),
      );
    }
    await assert.rejects(
      uploadArtifact(t.ctx, { ...base, body: body(randomBytes(1001)) }),
      code('GW_ERR_ARTIFACTS_TOO_LARGE'),
    );
    await uploadArtifact(t.ctx, { ...base, body: body(Buffer.from('x')) });
    await assert.rejects(
      uploadArtifact(t.ctx, { ...base, body: body(Buffer.from('y')) }),
      code('GW_ERR_ARTIFACTS_ALREADY_EXISTS'),
    );
  });

  void it('deduplicates identical content and shreds only with the last reference', async () => {
    await using t = await createTestContext();
    const data = randomBytes(5000);
    const a = await uploadArtifact(t.ctx, { ...base, body: body(data) });
    const b = await uploadArtifact(t.ctx, { ...base, version: '2.0.0', body: body(data) });
    assert.equal(a.deduplicated, false);
    assert.equal(b.deduplicated, true);
    assert.equal(blobFiles(t.root).filter((f) => f.includes('/b/')).length, 1);
    assert.equal((await deleteArtifact(t.ctx, a.item.id)).shredded, false);
    assert.deepEqual(await drain(await openPlaintext(t.ctx, b.item)), data);
    assert.equal((await deleteArtifact(t.ctx, b.item.id)).shredded, true);
    assert.equal(blobFiles(t.root).filter((f) => f.includes('/b/')).length, 0);
    await assert.rejects(getArtifact(t.ctx, b.item.id), code('GW_ERR_ARTIFACTS_NOT_FOUND'));
  });

  void it('enforces per-repository quotas', async () => {
    await using t = await createTestContext({ quotas: { team: 10_000 } });
    await uploadArtifact(t.ctx, { ...base, body: body(randomBytes(6000)) });
    await assert.rejects(
      uploadArtifact(t.ctx, { ...base, version: '2', body: body(randomBytes(6000)) }),
      code('GW_ERR_ARTIFACTS_QUOTA_EXCEEDED'),
    );
    await assert.rejects(
      uploadArtifact(t.ctx, { ...base, version: '3', contentLength: 6000, body: body(randomBytes(6000)) }),
      code('GW_ERR_ARTIFACTS_QUOTA_EXCEEDED'),
    );
    await uploadArtifact(t.ctx, { ...base, repository: 'other', body: body(randomBytes(6000)) });
    assert.equal((await listArtifacts(t.ctx, {})).total, 2);
  });

  void it('detects a tampered stored blob at download', async () => {
    await using t = await createTestContext();
    const data = randomBytes(600_000);
    const { item } = await uploadArtifact(t.ctx, { ...base, body: body(data) });
    const file = blobFiles(t.root).find((f) => f.includes('/b/')) ?? '';
    const bytes = readFileSync(file);
    bytes[400_000] = (bytes[400_000] ?? 0) ^ 0x01;
    writeFileSync(file, bytes);
    await assert.rejects(drain(await openPlaintext(t.ctx, item)), code('GW_ERR_ARTIFACTS_INTEGRITY'));
    await assert.rejects(
      drain(await openPlaintext(t.ctx, item, { start: 399_000, end: 399_100 })),
      code('GW_ERR_ARTIFACTS_INTEGRITY'),
    );
    // A range in an untouched segment still reads.
    assert.deepEqual(
      await drain(await openPlaintext(t.ctx, item, { start: 0, end: 99 })),
      data.subarray(0, 100),
    );
  });

  void it('rotation rewraps data keys and the old master key can then be retired', async () => {
    await using t = await createTestContext();
    const data = randomBytes(3000);
    const { item } = await uploadArtifact(t.ctx, { ...base, body: body(data) });
    const next = createKeyring(
      [
        { id: 'default', key: Buffer.alloc(32, 7) },
        { id: 'k2', key: Buffer.alloc(32, 9) },
      ],
      'k2',
    );
    const rotated = { ...t.ctx, keyring: next };
    assert.deepEqual(await rotateKeys(rotated), { rewrapped: 1 });
    const retired = { ...t.ctx, keyring: createKeyring([{ id: 'k2', key: Buffer.alloc(32, 9) }], 'k2') };
    assert.deepEqual(await drain(await openPlaintext(retired, item)), data);
    await assert.rejects(openPlaintext(t.ctx, item), code('GW_ERR_ARTIFACTS_KEY_UNAVAILABLE'));
  });

  void it('a failed client stream leaves no artifact and no blob; the sweep removes crash leftovers', async () => {
    await using t = await createTestContext();
    async function* broken(): AsyncGenerator<Uint8Array> {
      yield randomBytes(400_000);
      throw new Error('connection reset');
    }
    await assert.rejects(uploadArtifact(t.ctx, { ...base, body: broken() }), /connection reset/);
    assert.equal((await listArtifacts(t.ctx, {})).total, 0);
    assert.deepEqual(
      blobFiles(t.root).filter((f) => f.includes('/b/')),
      [],
    );
    // Simulate a crash between blob commit and metadata commit: a pending row and a committed blob.
    await t.ctx.db
      .kysely()
      .insertInto('artifacts_pending')
      .values({ blob_key: 'b/zz/crashed', instance: 'dead', heartbeat_at: 0 })
      .execute();
    await t.blobs.put('b/zz/crashed', body(Buffer.from('partial')));
    await t.blobs.put('b/zz/orphan', body(Buffer.from('orphan')));
    writeFileSync(join(t.root, 'blobs', 'staging', 'left.part'), 'x');
    const result = await sweep(t.ctx, true);
    assert.deepEqual(result, { abandonedUploads: 1, orphanBlobs: 1, stagingFiles: 1, expiredTickets: 0 });
    assert.deepEqual(blobFiles(t.root), []);
  });

  void it('parses Range headers', () => {
    assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
    assert.deepEqual(parseRange('bytes=90-', 100), { start: 90, end: 99 });
    assert.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 99 });
    assert.deepEqual(parseRange('bytes=95-200', 100), { start: 95, end: 99 });
    assert.equal(parseRange(undefined, 100), undefined);
    assert.equal(parseRange('bytes=0-1,5-6', 100), undefined);
    assert.equal(parseRange('items=0-1', 100), undefined);
    assert.throws(() => parseRange('bytes=100-', 100), code('GW_ERR_ARTIFACTS_RANGE_NOT_SATISFIABLE'));
    assert.throws(() => parseRange('bytes=-0', 100), code('GW_ERR_ARTIFACTS_RANGE_NOT_SATISFIABLE'));
  });
});
