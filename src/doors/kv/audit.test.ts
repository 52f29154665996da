import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AuditInput, AuditLog } from '#core/audit';
import { silentLogger } from '#core/log';
import { createKvAuditor, type KvAuditSettings } from './audit.ts';

/** An AuditLog whose writes complete only when the test releases them. */
function heldAuditLog() {
  const recorded: AuditInput[] = [];
  const waiting: (() => void)[] = [];
  const log: AuditLog = {
    record: (input) =>
      new Promise<void>((resolve) => {
        recorded.push(input);
        waiting.push(resolve);
      }),
    query: () => Promise.resolve({ events: [] }),
    verify: () => Promise.resolve({ ok: true, checked: 0 }),
  };
  return { log, recorded, release: () => waiting.splice(0).forEach((r) => r()) };
}

const event = (actor: string, decision: 'allow' | 'deny' = 'allow'): AuditInput => ({
  actor,
  action: 'kv.Get',
  resource: 'kv:orders',
  decision,
});

void describe('kv auditor', () => {
  void it('records every allowed call in "every" mode and reports a backlog at the bound', async () => {
    const held = heldAuditLog();
    const settings: KvAuditSettings = { allowed: 'every', summaryInterval: 60_000, maxPending: 3 };
    const auditor = createKvAuditor({ audit: held.log, settings: () => settings, log: silentLogger() });
    auditor.allow(event('a'));
    auditor.allow(event('a'));
    assert.equal(auditor.backlogged(), false);
    auditor.deny(event('b', 'deny'));
    assert.equal(auditor.backlogged(), true);
    held.release();
    await new Promise((r) => setImmediate(r));
    assert.equal(auditor.pending(), 0);
    assert.equal(auditor.backlogged(), false);
    assert.equal(held.recorded.length, 3);
    auditor.allow(event('d'));
    const drained = auditor.drain(AbortSignal.timeout(5000));
    held.release();
    await drained;
    assert.equal(auditor.pending(), 0);
  });

  void it('records the first call and then counts in "summary" mode; denials stay individual', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval', 'Date'] });
    const held = heldAuditLog();
    const settings: KvAuditSettings = { allowed: 'summary', summaryInterval: 1000, maxPending: 100 };
    const auditor = createKvAuditor({ audit: held.log, settings: () => settings, log: silentLogger() });
    for (let i = 0; i < 5; i += 1) auditor.allow(event('a'));
    auditor.allow(event('b'));
    auditor.deny(event('c', 'deny'));
    auditor.deny(event('c', 'deny'));
    assert.deepEqual(
      held.recorded.map((e) => [e.actor, e.decision]),
      [
        ['a', 'allow'],
        ['b', 'allow'],
        ['c', 'deny'],
        ['c', 'deny'],
      ],
    );
    t.mock.timers.tick(1000);
    const summaries = held.recorded.slice(4);
    assert.deepEqual(
      summaries.map((e) => [e.actor, e.reason, e.details?.['calls']]),
      [['a', 'summary', 4]],
    );
    held.release();
    await auditor.drain(AbortSignal.abort());
  });
});
