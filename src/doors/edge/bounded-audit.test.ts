import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { AuditInput } from '#core/audit';
import { createBoundedAudit } from './bounded-audit.ts';

function setup(t: TestContext) {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  const events: AuditInput[] = [];
  const audit = createBoundedAudit(
    { action: 'edge.connection.blocked', perWindow: 3, windowMs: 1000 },
    (e: AuditInput) => events.push(e),
  );
  const refuse = (clientIp: string, reason = 'denied', resource = 'listener:main') =>
    audit.record({
      resource,
      reason,
      clientIp,
      decision: 'deny',
      stable: { code: 'GW_ERR_EDGE_CONNECTION_BLOCKED' },
      details: { x: 1 },
    });
  return { events, audit, refuse, tick: (ms: number) => t.mock.timers.tick(ms) };
}

void describe('bounded audit', () => {
  void it('audits refusals one by one up to the budget of a window', (t) => {
    const { events, refuse } = setup(t);
    refuse('192.0.2.1');
    refuse('192.0.2.2', 'no-route');
    assert.equal(events.length, 2);
    assert.deepEqual(events[0], {
      actor: 'anonymous',
      action: 'edge.connection.blocked',
      resource: 'listener:main',
      decision: 'deny',
      reason: 'denied',
      clientIp: '192.0.2.1',
      details: { code: 'GW_ERR_EDGE_CONNECTION_BLOCKED', x: 1 },
    });
    assert.equal(events[1]?.reason, 'no-route');
  });

  void it('summarises a flood per reason at the end of the window, with counts and samples', (t) => {
    const { events, refuse, tick } = setup(t);
    for (let i = 0; i < 1000; i++) refuse(`192.0.2.${i % 250}`);
    refuse('198.51.100.1', 'rate-limited');
    assert.equal(events.length, 3, 'only the budget is written during the flood');
    tick(999);
    assert.equal(events.length, 3);
    tick(1);
    assert.equal(events.length, 5);
    const denied = events.find((e) => e.reason === 'denied' && e.details?.['summary'] === true);
    assert.equal(denied?.details?.['count'], 997);
    assert.equal(denied?.details?.['windowMs'], 1000);
    assert.deepEqual(denied?.details?.['sampleClients'], [
      '192.0.2.3',
      '192.0.2.4',
      '192.0.2.5',
      '192.0.2.6',
      '192.0.2.7',
    ]);
    assert.equal(denied?.clientIp, undefined);
    const limited = events.find((e) => e.reason === 'rate-limited');
    assert.equal(limited?.details?.['count'], 1);
    // A new window starts with a fresh budget.
    refuse('192.0.2.9');
    assert.equal(events.at(-1)?.clientIp, '192.0.2.9');
  });

  void it('flush writes pending summaries at once, and nothing when there are none', (t) => {
    const { events, refuse, audit } = setup(t);
    audit.flush();
    assert.equal(events.length, 0);
    for (let i = 0; i < 5; i++) refuse('192.0.2.1');
    audit.flush();
    assert.equal(events.length, 4);
    assert.equal(events[3]?.details?.['count'], 2);
    audit.flush();
    assert.equal(events.length, 4);
  });
  void it('keeps one summary per resource and reason, with the details every event shares', (t) => {
    const { events, refuse, tick } = setup(t);
    for (let i = 0; i < 3; i++) refuse('192.0.2.1');
    refuse('192.0.2.1', 'refused', 'route:a');
    refuse('192.0.2.2', 'refused', 'route:b');
    refuse('192.0.2.3', 'refused', 'route:b');
    tick(1000);
    const summaries = events.filter((e) => e.details?.['summary'] === true);
    assert.deepEqual(
      summaries.map((e) => [e.resource, e.details?.['count'], e.details?.['code'], e.details?.['x']]),
      [
        ['route:a', 1, 'GW_ERR_EDGE_CONNECTION_BLOCKED', undefined],
        ['route:b', 2, 'GW_ERR_EDGE_CONNECTION_BLOCKED', undefined],
      ],
    );
    assert.ok(summaries.every((e) => e.decision === 'deny' && e.action === 'edge.connection.blocked'));
  });
});
