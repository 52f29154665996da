import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { silentLogger } from '#core/log';
import { createMetrics, parseExposition, sampleValue } from '#core/metrics';
import { createPostgresDatabase, createSqliteDatabase, type Database } from '#core/storage';
import { isolatedPostgres, requirePostgres } from '#testing/services';
import { type AuditLogOptions, type ClosableAuditLog, createAuditLog } from './audit-log.ts';
import { GENESIS_HASH, eventHash } from './chain.ts';
import type { AuditEvent, AuditInput } from './port.ts';

/** A real database whose transactions are counted, and which can be made unreachable. */
function counting(db: Database): { db: Database; transactions: () => number; down: (on: boolean) => void } {
  let n = 0;
  let unreachable = false;
  const refused = () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:5432'));
  const proxy = new Proxy(db, {
    get(target, key, receiver) {
      if (key === 'transaction')
        return (fn: Parameters<Database['transaction']>[0]) => {
          n += 1;
          return unreachable ? refused() : target.transaction(fn);
        };
      if (key === 'ping') return (ms?: number) => (unreachable ? refused() : target.ping(ms));
      const value: unknown = Reflect.get(target, key, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return {
    db: proxy,
    transactions: () => n,
    down: (on) => {
      unreachable = on;
    },
  };
}

interface Setup extends AsyncDisposable {
  readonly audit: ClosableAuditLog;
  readonly file: string;
  readonly metrics: ReturnType<typeof createMetrics>;
  transactions(): number;
  /** Makes the database unreachable (true) or reachable again (false). */
  down(on: boolean): void;
  advance(ms: number): void;
  /** A new audit log on the same database and file (the next start of the process). */
  restart(): Promise<ClosableAuditLog>;
}

type Open = () => Promise<{ db: Database; drop: () => Promise<void> }>;

async function setup(open: Open, extra: Partial<AuditLogOptions> = {}): Promise<Setup> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-audit-batch-'));
  const opened = await open();
  const { db, transactions, down } = counting(opened.db);
  const metrics = createMetrics({ processMetrics: false });
  const file = join(dir, 'audit.jsonl');
  let now = Date.parse('2026-01-01T00:00:00.000Z');
  const clock = { now: () => now };
  const cleanup = async () => {
    await opened.db.close();
    await opened.drop();
    await rm(dir, { recursive: true, force: true });
  };
  const audit = await createAuditLog({ db, file, clock, log: silentLogger(), metrics, ...extra }).catch(
    async (error: unknown) => {
      await cleanup();
      throw error;
    },
  );
  const before = transactions();
  return {
    audit,
    file,
    metrics,
    transactions: () => transactions() - before,
    down,
    advance: (ms) => {
      now += ms;
    },
    restart: () =>
      createAuditLog({
        db,
        file,
        clock,
        log: silentLogger(),
        metrics: createMetrics({ processMetrics: false }),
      }),
    [Symbol.asyncDispose]: async () => {
      await audit.close();
      await cleanup();
    },
  };
}

async function sample(s: Setup, name: string, labels: Record<string, string> = {}): Promise<number> {
  return sampleValue(parseExposition((await s.metrics.render()).body), name, labels) ?? 0;
}

const input = (i: number): AuditInput => ({
  actor: `user:${i % 7}`,
  action: 'test.batch',
  resource: `r/${i}`,
  decision: i % 5 === 0 ? 'deny' : 'allow',
  details: { i },
});

async function fileEvents(file: string): Promise<AuditEvent[]> {
  return (await readFile(file, 'utf8'))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as AuditEvent);
}

/** The file holds events 1..n in order, each linked to the one before and correctly hashed. */
function assertLinear(events: readonly AuditEvent[], n: number): void {
  assert.equal(events.length, n);
  let prevHash = GENESIS_HASH;
  for (const [i, e] of events.entries()) {
    assert.equal(e.seq, i + 1);
    assert.equal(e.prevHash, prevHash);
    assert.equal(eventHash(e), e.hash);
    prevHash = e.hash;
  }
}

const sqlite: Open = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-audit-batch-db-'));
  const db = await createSqliteDatabase({ file: join(dir, 'gatehouse.db'), busyTimeoutMs: 10_000 });
  return { db, drop: () => rm(dir, { recursive: true, force: true }) };
};
const postgres = requirePostgres();
const pg: Open = async () => {
  const schema = await isolatedPostgres(postgres.need(), 'auditbatch');
  return { db: createPostgresDatabase({ url: schema.url, poolSize: 4 }), drop: () => schema.drop() };
};

function suite(name: string, open: Open, options: { readonly skip?: string } = {}): void {
  void describe(`audit group commit on ${name}`, options, () => {
    void it('writes 1000 concurrent events as one linear chain in far fewer transactions', async () => {
      await using s = await setup(open);
      await Promise.all(Array.from({ length: 1000 }, (_, i) => s.audit.record(input(i))));
      const events = await fileEvents(s.file);
      assertLinear(events, 1000);
      assert.deepEqual(
        events.map((e) => e.resource),
        Array.from({ length: 1000 }, (_, i) => `r/${i}`),
        'events keep the order record was called in',
      );
      assert.ok(s.transactions() <= 10, `${s.transactions()} transactions for 1000 events`);
      assert.equal(await sample(s, 'gatehouse_audit_batches_total'), s.transactions());
      assert.deepEqual(await s.audit.verify(), { ok: true, checked: 1000 });
    });

    void it('resolves record only once its event is in the database and the file', async () => {
      await using s = await setup(open);
      await s.audit.record(input(1));
      assert.equal((await fileEvents(s.file)).length, 1);
      assert.equal((await s.audit.query({})).events.length, 1);
    });

    void it('makes callers wait when the queue is full, and counts it', async () => {
      await using s = await setup(open, { batchSize: 4, queueCapacity: 8 });
      await Promise.all(Array.from({ length: 100 }, (_, i) => s.audit.record(input(i))));
      assertLinear(await fileEvents(s.file), 100);
      assert.ok((await sample(s, 'gatehouse_audit_backpressure_waits_total')) > 0);
      assert.ok(s.transactions() >= 25, 'no batch is larger than the batch size');
    });

    void it('refuses a batch size the database cannot bind in one statement', async () => {
      await assert.rejects(setup(open, { batchSize: 2001 }), RangeError);
    });

    void it('flushes every queued event on close, then refuses new ones', async () => {
      await using s = await setup(open);
      // Not awaited: the events are only queued when close is called.
      const pending = Array.from({ length: 300 }, (_, i) => s.audit.record(input(i)));
      await s.audit.close();
      assertLinear(await fileEvents(s.file), 300);
      assert.equal((await s.audit.query({ limit: 1 })).events[0]?.seq, 300);
      await Promise.all(pending);
      await s.audit.record(input(301));
      assert.equal((await fileEvents(s.file)).length, 300);
      assert.equal(await sample(s, 'gatehouse_audit_write_failures_total', { sink: 'database' }), 1);
    });

    void it('holds events while the database is unreachable and writes them, in order and on time, when it returns', async () => {
      await using s = await setup(open, { batchSize: 8 });
      await s.audit.record(input(0));
      s.down(true);
      const started = performance.now();
      for (let i = 1; i <= 40; i += 1) {
        s.advance(1000);
        // Each call returns while the database is down: callers are not held up by the outage.
        await s.audit.record(input(i));
      }
      assert.ok(performance.now() - started < 2000, 'record did not wait for the database');
      assert.equal((await fileEvents(s.file)).length, 1);
      assert.ok((await sample(s, 'gatehouse_audit_held_events')) > 0);
      await new Promise((resolve) => setTimeout(resolve, 250));
      assert.ok((await sample(s, 'gatehouse_audit_write_retries_total')) >= 1);
      s.down(false);
      await s.audit.flush();
      const events = await fileEvents(s.file);
      assertLinear(events, 41);
      assert.deepEqual(
        events.map((e) => e.resource),
        Array.from({ length: 41 }, (_, i) => `r/${i}`),
      );
      // Each event carries the time it was recorded, not the time the database came back.
      assert.equal(events[40]?.time, '2026-01-01T00:00:40.000Z');
      assert.equal(await sample(s, 'gatehouse_audit_held_events'), 0);
      assert.equal(await sample(s, 'gatehouse_audit_write_failures_total', { sink: 'database' }), 0);
      assert.deepEqual(await s.audit.verify(), { ok: true, checked: 41 });
    });

    void it('keeps events still held at shutdown in the spool and writes them at the next start', async () => {
      await using s = await setup(open);
      await s.audit.record(input(0));
      s.down(true);
      for (let i = 1; i <= 10; i += 1) await s.audit.record(input(i));
      await s.audit.close();
      assert.equal(await sample(s, 'gatehouse_audit_spooled_events_total'), 10);
      const spool = (await readFile(`${s.file}.pending`, 'utf8')).trim().split('\n');
      assert.equal(spool.length, 10);
      // A line cut short by a crash while spooling is skipped, the others are kept.
      await appendFile(`${s.file}.pending`, '{"input":{"actor":"x"');
      s.down(false);
      const next = await s.restart();
      try {
        const events = await fileEvents(s.file);
        assertLinear(events, 11);
        assert.deepEqual(
          events.map((e) => e.resource),
          Array.from({ length: 11 }, (_, i) => `r/${i}`),
        );
        await assert.rejects(readFile(`${s.file}.pending`), { code: 'ENOENT' });
        assert.deepEqual(await next.verify(), { ok: true, checked: 11 });
      } finally {
        await next.close();
      }
    });

    void it('keeps the spool when the database is still unreachable at the next start', async () => {
      await using s = await setup(open);
      s.down(true);
      for (let i = 0; i < 3; i += 1) await s.audit.record(input(i));
      await s.audit.close();
      const next = await s.restart();
      await next.close();
      assert.equal((await readFile(`${s.file}.pending`, 'utf8')).trim().split('\n').length, 3);
      s.down(false);
      const third = await s.restart();
      await third.close();
      assertLinear(await fileEvents(s.file), 3);
    });

    void it('keeps the other events of a batch when the database refuses one', async () => {
      await using s = await setup(open);
      // PostgreSQL text cannot hold NUL; SQLite stores it. Either way the neighbours are kept.
      const events = [input(1), { ...input(2), resource: 'bad\u0000resource' }, input(3)];
      await Promise.all(events.map((e) => s.audit.record(e)));
      const stored = await fileEvents(s.file);
      assertLinear(stored, name === 'PostgreSQL' ? 2 : 3);
      assert.deepEqual(await s.audit.verify(), { ok: true, checked: stored.length });
    });
  });
}

suite('SQLite', sqlite);
suite('PostgreSQL', pg, postgres.options);
