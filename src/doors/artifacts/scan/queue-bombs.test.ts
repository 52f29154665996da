import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getArtifact } from '../service.ts';
import { createTestContext } from '../test-context.ts';
import { uploadArtifact } from '../upload.ts';
import { createBuiltinScanner } from './builtin.ts';
import { makeTgz, makeZip } from './fixtures.ts';
import type { Scanner } from './port.ts';
import { createScanQueue, type ScanQueue } from './queue.ts';

async function* body(data: Buffer): AsyncGenerator<Uint8Array> {
  yield data;
}

const LIMITS = {
  maxEntries: 1000,
  maxExpandedSize: 2 ** 34,
  maxDepth: 4,
  maxRatio: 200,
  maxBufferedFile: 1 << 26,
};
const MiB = 1024 * 1024;

/** Stops the queue; a scan that never ends fails the test here instead of stalling it. */
async function stopWithin(queue: ScanQueue, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the queue did not stop within ${ms} ms`)), ms);
  });
  try {
    await Promise.race([queue.stop(AbortSignal.timeout(ms / 2)), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `done` every 20 ms for at most `ms`; a hang fails the test instead of stalling it. */
async function until(ms: number, done: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > end) throw new Error(`not done within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

void describe('scan queue against archive bombs and stuck scans', () => {
  void it('blocks a 100 KB gzip bomb and a zip bomb of unparsed entries, then scans the next upload', async () => {
    await using t = await createTestContext({ scan: { pollInterval: '50ms' } });
    const scanner = createBuiltinScanner({ limits: () => LIMITS, clock: t.ctx.clock });
    const queue = createScanQueue(t.ctx, () => scanner);
    const up = async (name: string, fileName: string, data: Buffer) =>
      (
        await uploadArtifact(t.ctx, {
          repository: 'team-a',
          name,
          version: '1',
          actor: 'u',
          fileName,
          body: body(data),
        })
      ).item.id;
    const zeros = Buffer.alloc(40 * MiB);
    const ids = [
      await up('b', 'midbomb.tgz', makeTgz([{ name: 'z.dat', data: Buffer.alloc(100 * MiB) }])),
      await up(
        'bomb',
        'b.zip',
        makeZip(Array.from({ length: 5 }, (_, i) => ({ name: `d${i}.bin`, data: zeros }))),
      ),
      await up('c', 'other.bin', Buffer.from('plain bytes')),
    ];
    queue.start();
    try {
      await until(20_000, async () => {
        for (const id of ids) if ((await getArtifact(t.ctx, id)).scan_state !== 'done') return false;
        return true;
      });
    } finally {
      await stopWithin(queue, 5000);
    }
    const [tgz, zip, other] = await Promise.all(ids.map((id) => getArtifact(t.ctx, id)));
    assert.equal(tgz?.status, 'blocked');
    assert.match(tgz?.status_reason ?? '', /expands more than 200 times/);
    assert.equal(zip?.status, 'blocked');
    assert.match(zip?.status_reason ?? '', /expands more than 200 times/);
    assert.equal(other?.status, 'approved', other?.status_reason);
  });

  void it('fails a scan that outlives its deadline, keeps it quarantined and scans others meanwhile', async () => {
    await using t = await createTestContext({
      scan: { pollInterval: '50ms', concurrency: 1, retryBackoff: '1h' },
    });
    const builtin = createBuiltinScanner({ limits: () => LIMITS, clock: t.ctx.clock, timeoutMs: () => 300 });
    // The artifact named "stuck" never answers a read: without a deadline it holds the only worker.
    const scanner: Scanner = {
      name: builtin.name,
      scan: (target, signal) =>
        builtin.scan(
          target.name === 'stuck'
            ? { ...target, access: { size: target.size, read: () => new Promise<Buffer>(() => undefined) } }
            : target,
          signal,
        ),
    };
    const queue = createScanQueue(t.ctx, () => scanner);
    const up = async (name: string) =>
      (
        await uploadArtifact(t.ctx, {
          repository: 'team-a',
          name,
          version: '1',
          actor: 'u',
          body: body(Buffer.from(`bytes of ${name}`)),
        })
      ).item.id;
    const stuck = await up('stuck');
    const next = await up('next');
    queue.start();
    try {
      await until(10_000, async () => (await getArtifact(t.ctx, next)).scan_state === 'done');
    } finally {
      await stopWithin(queue, 5000);
    }
    assert.equal((await getArtifact(t.ctx, next)).status, 'approved');
    const row = await getArtifact(t.ctx, stuck);
    assert.equal(row.status, 'quarantined', 'never approved without a finished scan');
    assert.equal(row.scan_state, 'pending', 'waits for its retry');
    assert.ok(
      t.events.some(
        (e) =>
          e.action === 'artifacts.scan' &&
          e.decision === 'error' &&
          /did not finish within 300 ms/.test(e.reason ?? ''),
      ),
    );
  });
});
