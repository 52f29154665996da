import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AuditInput } from '#core/audit';
import { getArtifact, setVerdict } from '../service.ts';
import { createTestContext } from '../test-context.ts';
import { uploadArtifact } from '../upload.ts';
import { createBuiltinScanner } from './builtin.ts';
import { makeTgz, makeZip } from './fixtures.ts';
import { CRITICAL, LOW, osvRecord, vulndbWith } from './osv-fixture.ts';
import type { Scanner } from './port.ts';
import { createScanQueue } from './queue.ts';

async function* body(data: Buffer): AsyncGenerator<Uint8Array> {
  yield data;
}

const lock = (deps: Record<string, string>) =>
  JSON.stringify({
    lockfileVersion: 3,
    packages: Object.fromEntries(Object.entries(deps).map(([n, v]) => [`node_modules/${n}`, { version: v }])),
  });

const LIMITS = {
  maxEntries: 1000,
  maxExpandedSize: 1 << 30,
  maxDepth: 4,
  maxRatio: 100,
  maxBufferedFile: 1 << 26,
};

void describe('scan queue and policy gate', () => {
  void it('quarantines, then approves clean artifacts and blocks vulnerable ones and archive bombs', async () => {
    await using t = await createTestContext();
    const osv = await vulndbWith([
      osvRecord('GHSA-aaaa-bbbb-0001', 'npm', 'lodash', '0', '4.17.21', CRITICAL),
      osvRecord('GHSA-aaaa-bbbb-0002', 'npm', 'minimist', '0', '1.2.6', LOW),
    ]);
    try {
      const scanner = createBuiltinScanner({
        limits: () => LIMITS,
        vulnerabilities: osv.vulndb,
        clock: t.ctx.clock,
      });
      const queue = createScanQueue(t.ctx, () => scanner);
      const up = (version: string, data: Buffer) =>
        uploadArtifact(t.ctx, {
          repository: 'r',
          name: 'app.tgz',
          version,
          actor: 'u',
          fileName: 'app.tgz',
          body: body(data),
        });
      const clean = await up(
        '1',
        makeTgz([{ name: 'package-lock.json', data: lock({ lodash: '4.17.21', minimist: '1.2.5' }) }]),
      );
      const bad = await up('2', makeTgz([{ name: 'package-lock.json', data: lock({ lodash: '4.17.20' }) }]));
      const bomb = await up('3', makeZip([{ name: 'x/go.mod', data: Buffer.alloc(20 * 1024 * 1024) }]));
      assert.equal((await getArtifact(t.ctx, clean.item.id)).status, 'quarantined');
      assert.equal(await queue.depth(), 3);
      assert.equal(await queue.drain(), 3);
      assert.equal(await queue.depth(), 0);
      const c = await getArtifact(t.ctx, clean.item.id);

      assert.equal(c.status, 'approved');
      assert.equal(c.scan_state, 'done');
      const b = await getArtifact(t.ctx, bad.item.id);
      assert.equal(b.status, 'blocked');
      assert.match(b.status_reason, /lodash@4\.17\.20/);
      assert.equal((await getArtifact(t.ctx, bomb.item.id)).status, 'blocked');
      assert.ok(t.events.some((e) => e.action === 'artifacts.verdict' && e.decision === 'deny'));
      // Accept the advisory with a reason and expiry: a rescan approves it.
      t.configure({
        policy: {
          rules: [
            {
              id: 'vulns',
              type: 'vulnerability',
              vulnerability: {
                threshold: 'high',
                allow: [{ id: 'GHSA-aaaa-bbbb-0001', reason: 'not reachable', expires: '2999-01-01' }],
              },
            },
          ],
        },
      });
      await queue.enqueue(bad.item.id);
      // The previous verdict stands while the rescan is pending.
      assert.equal((await getArtifact(t.ctx, bad.item.id)).status, 'blocked');
      await queue.drain();
      const after = await getArtifact(t.ctx, bad.item.id);
      assert.equal(after.status, 'approved', after.status_reason);
    } finally {
      await osv.close();
    }
  });

  void it('retries failed scans with backoff, survives a restart and gives up after maxAttempts', async () => {
    let now = 1_000_000;
    await using t = await createTestContext({ scan: { maxAttempts: 3, retryBackoff: '10s' } });
    const clock = { now: () => now };
    const ctx = { ...t.ctx, clock };
    let calls = 0;
    const failing: Scanner = {
      name: 'failing',
      scan: async () => {
        calls += 1;
        throw new Error('scanner crashed');
      },
    };
    const { item } = await uploadArtifact(ctx, {
      repository: 'r',
      name: 'x',
      version: '1',
      actor: 'u',
      body: body(Buffer.from('data')),
    });
    const queue = createScanQueue(ctx, () => failing);
    assert.equal(await queue.drain(), 1);
    assert.equal(await queue.drain(), 0, 'not due before the backoff');
    assert.equal(
      (await getArtifact(ctx, item.id)).scan_state,
      'pending',
      'waiting for the retry, not scanning',
    );
    now += 10_000;
    // A restarted process sees the same persistent job.
    await using again = await t.reopen();
    const restarted = createScanQueue({ ...again.ctx, clock }, () => failing);
    assert.equal(await restarted.drain(), 1);
    now += 19_000;
    assert.equal(await restarted.drain(), 0, 'backoff doubled');
    now += 1_000;
    assert.equal(await restarted.drain(), 1);
    assert.equal(calls, 3);
    assert.equal(await restarted.depth(), 0);
    const row = await getArtifact(again.ctx, item.id);
    assert.equal(row.scan_state, 'failed');
    assert.equal(row.status, 'quarantined', 'never approved without a scan');
    assert.ok(t.events.filter((e) => e.action === 'artifacts.scan' && e.decision === 'error').length >= 1);
  });

  void it('publishes a finished scan with its verdict at once and keeps an override made while it ran', async () => {
    await using t = await createTestContext();
    const osv = await vulndbWith([]);
    try {
      const builtin = createBuiltinScanner({
        limits: () => LIMITS,
        vulnerabilities: osv.vulndb,
        clock: t.ctx.clock,
      });
      let startScan: () => void = () => undefined;
      const started = new Promise<void>((resolve) => {
        startScan = resolve;
      });
      let letFinish: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => {
        letFinish = resolve;
      });
      let hold = false;
      const held: Scanner = {
        name: 'gatehouse',
        scan: async (target, signal) => {
          if (hold) {
            startScan();
            await gate;
          }
          return builtin.scan(target, signal);
        },
      };
      // What a reader (the console's poll) sees right after the scan is recorded.
      const seen: string[] = [];
      const ctx = {
        ...t.ctx,
        audit: async (event: AuditInput) => {
          if (event.action === 'artifacts.scan') {
            const id = /#(.+)$/.exec(event.resource ?? '')?.[1] ?? '';
            const row = await getArtifact(t.ctx, id);
            seen.push(`${row.scan_state}/${row.status}`);
          }
          await t.ctx.audit(event);
        },
      };
      const queue = createScanQueue(ctx, () => held);
      const up = (version: string) =>
        uploadArtifact(ctx, {
          repository: 'r',
          name: 'n',
          version,
          actor: 'u',
          body: body(Buffer.from(version)),
        });
      await up('1');
      await queue.drain();
      assert.deepEqual(seen, ['done/approved'], 'never done while still quarantined');

      hold = true;
      const { item } = await up('2');
      const draining = queue.drain();
      await started;
      await setVerdict(ctx, item.id, {
        status: 'blocked',
        reason: 'Override by admin: hold',
        by: 'override',
      });
      letFinish();
      await draining;
      const row = await getArtifact(ctx, item.id);
      assert.equal(row.status, 'blocked', row.status_reason);
      assert.equal(row.status_by, 'override');
      assert.equal(row.scan_state, 'done');
      assert.ok(!t.events.some((e) => e.action === 'artifacts.verdict' && e.resource?.endsWith(item.id)));
    } finally {
      await osv.close();
    }
  });
});
