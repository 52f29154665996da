import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createHealthRegistry } from './health.ts';

void describe('createHealthRegistry', () => {
  void it('is ok when every check is ok and reports each', async () => {
    const health = createHealthRegistry({ clock: { now: () => 0 } });
    health.register('database', () => Promise.resolve({ ok: true }));
    health.register('door:edge', () => Promise.resolve({ ok: true, detail: '2 listeners' }));
    assert.deepEqual(await health.check(), {
      ok: true,
      checks: { database: { ok: true }, 'door:edge': { ok: true, detail: '2 listeners' } },
    });
  });

  void it('is not ok when a check fails, throws or times out, and says why', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const health = createHealthRegistry({ clock: { now: () => 0 } });
    health.register('database', () => Promise.resolve({ ok: true }));
    health.register('cache', () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6379')));
    health.register('uplink:npm', () => new Promise(() => {}));
    health.register('door:kv', () => Promise.resolve({ ok: false, detail: 'driver down' }));
    const pending = health.check(500);
    await Promise.resolve();
    t.mock.timers.tick(500);
    const report = await pending;
    assert.equal(report.ok, false);
    assert.deepEqual(report.checks['database'], { ok: true });
    assert.deepEqual(report.checks['cache'], { ok: false, detail: 'connect ECONNREFUSED 127.0.0.1:6379' });
    assert.deepEqual(report.checks['uplink:npm'], { ok: false, detail: 'timed out after 500ms' });
    assert.deepEqual(report.checks['door:kv'], { ok: false, detail: 'driver down' });
  });

  void it('recovers when the dependency returns', async () => {
    let up = false;
    const health = createHealthRegistry({ clock: { now: () => 0 } });
    health.register('database', () => Promise.resolve({ ok: up }));
    assert.equal((await health.check()).ok, false);
    up = true;
    assert.equal((await health.check()).ok, true);
  });

  void it('coalesces concurrent runs and caches for cacheMs by the injected clock', async () => {
    let now = 1000;
    let calls = 0;
    const health = createHealthRegistry({ clock: { now: () => now }, cacheMs: 100 });
    health.register('database', () => {
      calls += 1;
      return Promise.resolve({ ok: true });
    });
    await Promise.all([health.check(), health.check(), health.check()]);
    assert.equal(calls, 1);
    now += 99;
    await health.check();
    assert.equal(calls, 1);
    now += 1;
    await health.check();
    assert.equal(calls, 2);
  });

  void it('refuses duplicate and malformed names', () => {
    const health = createHealthRegistry({ clock: { now: () => 0 } });
    health.register('database', () => Promise.resolve({ ok: true }));
    assert.throws(
      () => health.register('database', () => Promise.resolve({ ok: true })),
      /already registered/,
    );
    assert.throws(() => health.register('Bad Name', () => Promise.resolve({ ok: true })), TypeError);
  });
});
