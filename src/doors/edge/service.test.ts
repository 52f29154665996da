import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { AuditLog } from '#core/audit';
import { validateRaw } from '#core/config';
import { createLogger } from '#core/log';
import { createMetrics } from '#core/metrics';
import { createLimiterFactory } from '#core/ratelimit';
import { edgeConfigSchema } from './config.ts';
import type { EdgeRoute } from './model.ts';
import { EdgeService } from './service.ts';
import type { EdgeSnapshot, EdgeStore } from './store.ts';

const route = (id: string, host: string): EdgeRoute => ({
  id,
  listener: 'main',
  host,
  mode: 'l4',
  backend: '127.0.0.1:8080',
  backendProtocol: 'http1',
  backendProxyProtocol: false,
});

/** Waits (bounded) until a snapshot read is pending. */
async function readStarted(reads: readonly unknown[]): Promise<void> {
  for (let i = 0; i < 1000 && reads.length === 0; i += 1)
    await new Promise((resolve) => setImmediate(resolve));
  assert.ok(reads.length > 0, 'a snapshot read started');
}

void it('reads the routes again for a refresh asked while a poll was reading the old ones', async () => {
  // The store's snapshot waits for the test, so the poll is surely mid-read when the API's
  // change lands and its forced refresh arrives.
  let current: EdgeSnapshot = { revision: 1, routes: [route('a', 'a.test')], policies: [], limits: [] };
  const reads: ((snapshot: EdgeSnapshot) => void)[] = [];
  const store = {
    revision: async () => current.revision,
    snapshot: () => new Promise<EdgeSnapshot>((resolve) => reads.push(resolve)),
  } as unknown as EdgeStore;
  const limiters = createLimiterFactory();
  const service = new EdgeService(
    {
      log: createLogger({ level: 'silent' }),
      metrics: createMetrics(),
      audit: { record: async () => undefined } as unknown as AuditLog,
      limiters,
      store,
    },
    validateRaw(edgeConfigSchema, {}, 'test'),
  );
  try {
    const poll = service.refresh();
    await readStarted(reads);
    const stale = current;
    current = { ...current, revision: 2, routes: [...current.routes, route('b', 'b.test')] };
    const afterChange = service.refresh(true);
    reads.shift()?.(stale);
    await poll;
    assert.equal(service.table.match('main', 'b.test'), undefined, 'the poll read the old table');
    await readStarted(reads);
    reads.shift()?.(current);
    await afterChange;
    assert.notEqual(
      service.table.match('main', 'b.test'),
      undefined,
      'the change is live when refresh returns',
    );
  } finally {
    await limiters.close();
  }
});
