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

/** An auditor on `audit` with "every"-mode settings and the given overrides. */
function auditorOn(audit: AuditLog, overrides: Partial<KvAuditSettings>) {
  const settings: KvAuditSettings = {
    allowed: 'every',
    summaryInterval: 60_000,
    maxPending: 10_000,
    gatherWindow: 0,
    ...overrides,
  };
  return createKvAuditor({ audit, settings: () => settings, log: silentLogger() });
}

void describe('kv auditor', () => {
  void it('records every allowed call in "every" mode and reports a backlog at the bound', async () => {
    const held = heldAuditLog();
    const auditor = auditorOn(held.log, { maxPending: 3 });
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
    const auditor = auditorOn(held.log, {
      allowed: 'summary',
      summaryInterval: 1000,
      maxPending: 100,
      gatherWindow: 10,
    });
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

  void it('applies a reloaded summary interval to the next window', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval', 'Date'] });
    const held = heldAuditLog();
    let settings: KvAuditSettings = {
      allowed: 'summary',
      summaryInterval: 60_000,
      maxPending: 100,
      gatherWindow: 0,
    };
    const auditor = createKvAuditor({ audit: held.log, settings: () => settings, log: silentLogger() });
    auditor.allow(event('a'));
    auditor.allow(event('a'));
    settings = { ...settings, summaryInterval: 1000 };
    // The next call re-arms: the open window (one counted call) is summarised at once...
    auditor.allow(event('a'));
    assert.deepEqual(
      held.recorded.map((e) => [e.actor, e.reason, e.details?.['calls']]),
      [
        ['a', undefined, undefined],
        ['a', 'summary', 1],
        ['a', undefined, undefined],
      ],
    );
    // ...and the windows now last a second, not a minute.
    auditor.allow(event('a'));
    t.mock.timers.tick(1000);
    assert.deepEqual(held.recorded.at(-1)?.details?.['calls'], 1);
    assert.equal(held.recorded.length, 4);
    held.release();
    await auditor.drain(AbortSignal.abort());
  });

  void it('gathers allowed calls for the window and records them in one turn, in decision order', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const held = heldAuditLog();
    const turns: number[] = [];
    let turn = 0;
    const log: AuditLog = {
      ...held.log,
      record: (input) => {
        turns.push(turn);
        return held.log.record(input);
      },
    };
    const auditor = auditorOn(log, { maxPending: 4, gatherWindow: 10 });
    auditor.allow(event('a'));
    turn = 1;
    auditor.allow(event('b'));
    // Waiting events count against the bound before they reach the log.
    assert.equal(held.recorded.length, 0);
    assert.equal(auditor.pending(), 2);
    t.mock.timers.tick(9);
    assert.equal(held.recorded.length, 0);
    turn = 2;
    t.mock.timers.tick(1);
    assert.deepEqual(
      held.recorded.map((e) => e.actor),
      ['a', 'b'],
    );
    assert.deepEqual(turns, [2, 2], 'both recorded in the same turn, so the log writes them together');
    // A denial is recorded at once, after the allows decided before it.
    auditor.allow(event('c'));
    auditor.allow(event('d'));
    assert.equal(auditor.backlogged(), true);
    auditor.deny(event('e', 'deny'));
    assert.deepEqual(
      held.recorded.map((e) => e.actor),
      ['a', 'b', 'c', 'd', 'e'],
    );
    t.mock.timers.tick(10);
    assert.equal(held.recorded.length, 5, 'the released window does not fire again');
    held.release();
    await new Promise((r) => setImmediate(r));
    assert.equal(auditor.pending(), 0);
  });

  void it('records gathered events at once when 256 wait, and on drain', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const held = heldAuditLog();
    const auditor = auditorOn(held.log, { gatherWindow: 1000 });
    for (let i = 0; i < 255; i += 1) auditor.allow(event(`u${i}`));
    assert.equal(held.recorded.length, 0);
    auditor.allow(event('u255'));
    assert.equal(held.recorded.length, 256);
    auditor.allow(event('last'));
    const drained = auditor.drain(AbortSignal.timeout(5000));
    assert.equal(held.recorded.at(-1)?.actor, 'last', 'drain records what waits for the window');
    // A call still running when the door stops is recorded at once, not after a window that
    // could end after the audit log closed.
    auditor.allow(event('late'));
    assert.equal(held.recorded.at(-1)?.actor, 'late');
    held.release();
    await drained;
    assert.equal(auditor.pending(), 0);
  });
});
