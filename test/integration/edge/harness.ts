import assert from 'node:assert/strict';
/**
 * Starts the edge data plane on real core parts (SQLite, Prometheus registry, hash-chained
 * audit log, in-memory limiters) with configuration passed through the real validator.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '#core/app';
import { type AuditEvent, type AuditLog, createAuditLog } from '#core/audit';
import { validateRaw } from '#core/config';
import { silentLogger } from '#core/log';
import { createMetrics, type Metrics, parseExposition } from '#core/metrics';
import { type ClosableLimiterFactory, createLimiterFactory } from '#core/ratelimit';
import { createSqliteDatabase, type Database } from '#core/storage';
import { edgeConfigSchema } from '../../../src/doors/edge/config.ts';
import { EdgeService } from '../../../src/doors/edge/service.ts';
import { EDGE_MIGRATIONS, EdgeStore } from '../../../src/doors/edge/store.ts';

export interface EdgeHarness extends AsyncDisposable {
  readonly service: EdgeService;
  readonly store: EdgeStore;
  readonly metrics: Metrics;
  readonly audit: AuditLog;
  readonly db: Database;
  port(listener?: string): number;
  /** Sum of a metric's samples whose labels include `labels`. */
  metric(name: string, labels?: Readonly<Record<string, string>>): Promise<number>;
  /** Asserts a metric sum. */
  expectMetric(name: string, labels: Readonly<Record<string, string>>, expected: number): Promise<void>;
  /**
   * Audit events with this action, oldest first, once `until` holds for them (the edge records
   * asynchronously, so tests poll a bounded number of times).
   */
  events(action: string, until?: (events: readonly AuditEvent[]) => boolean): Promise<readonly AuditEvent[]>;
}

/** Default listener fields tests usually want: loopback, port 0, short deadlines. */
export function testListener(overrides: Readonly<Record<string, unknown>> = {}): Record<string, unknown> {
  return {
    id: 'main',
    host: '127.0.0.1',
    port: 0,
    preludeTimeout: '300ms',
    // Also the deadline of an HTTP/2 backend connection's handshake: backends run in the test
    // process, so a loaded machine needs more than a fraction of a second.
    connectTimeout: '3s',
    idleTimeout: '2s',
    responseTimeout: '500ms',
    ...overrides,
  };
}

/** Core parts a test brings itself: `limiters` (e.g. on the real Redis; closed on dispose). */
export interface EdgeHarnessOptions {
  readonly limiters?: ClosableLimiterFactory;
}

export async function startEdge(
  raw: Readonly<Record<string, unknown>>,
  options: EdgeHarnessOptions = {},
): Promise<EdgeHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'edge-test-'));
  const db = await createSqliteDatabase({ file: join(dir, 'edge.db') });
  const metrics = createMetrics({ processMetrics: false });
  const audit = await createAuditLog({
    db,
    file: join(dir, 'audit.jsonl'),
    clock: systemClock,
    log: silentLogger(),
    metrics,
  });
  await db.migrate(EDGE_MIGRATIONS);
  const store = new EdgeStore(db);
  const config = validateRaw(edgeConfigSchema, { enabled: true, ...raw }, 'test');
  const limiters = options.limiters ?? createLimiterFactory();
  const service = new EdgeService({ log: silentLogger(), metrics, audit, limiters, store }, config);
  await service.start();
  const metric = async (name: string, labels: Readonly<Record<string, string>> = {}) => {
    const { body } = await metrics.render();
    return parseExposition(body)
      .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .reduce((sum, s) => sum + s.value, 0);
  };
  return {
    service,
    store,
    metrics,
    audit,
    db,
    port: (listener = 'main') => service.listener(listener)?.port ?? 0,
    metric,
    async expectMetric(name, labels, expected) {
      assert.equal(await metric(name, labels), expected, `${name} ${JSON.stringify(labels)}`);
    },
    async events(action, until = (e) => e.length > 0) {
      let events: readonly AuditEvent[] = [];
      for (let i = 0; i < 100; i++) {
        events = (await audit.query({ action, limit: 1000 })).events.toReversed();
        if (until(events)) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      return events;
    },
    async [Symbol.asyncDispose]() {
      await service.stop(AbortSignal.timeout(1000));
      await limiters.close();
      await audit.close();
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
