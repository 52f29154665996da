import { appendFile } from 'node:fs/promises';
import type { Logger } from '#core/log';
import type { Metrics } from '#core/metrics';
import type { Database } from '#core/storage';
import { eventHash } from './chain.ts';
import { createGroupCommit } from './group-commit.ts';
import { AUDIT_MIGRATIONS } from './migrations.ts';
import type { AuditEvent, AuditInput, AuditLog } from './port.ts';
import { queryEvents } from './query.ts';
import { type AuditTables, eventToRow } from './rows.ts';
import { verifyAudit } from './verify.ts';

/** What `createAuditLog` needs. */
export interface AuditLogOptions {
  readonly db: Database;
  /** Absolute path of the JSONL copy. */
  readonly file: string;
  /** Epoch milliseconds (core/app's Clock; core/app imports this module, so not imported back). */
  readonly clock: { now(): number };
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Largest page a query returns (default 500). */
  readonly maxPageSize?: number;
  /** Most events written in one transaction and one file append (default 256, at most 2000). */
  readonly batchSize?: number;
  /** Events queued in memory at most; beyond it `record` waits (default 8192). */
  readonly queueCapacity?: number;
}

/** The audit log as its owner holds it: `close` writes what is queued before the database closes. */
export interface ClosableAuditLog extends AuditLog {
  /** Resolves when every event recorded so far is in the database and the file. */
  flush(): Promise<void>;
  /** Flushes, then refuses (logs and counts) further events. */
  close(): Promise<void>;
}

const DECISIONS = new Set(['allow', 'deny', 'error', 'info']);
const MAX_BATCH = 2000;

/** An event waiting for the writer: already a JSON round trip of what the caller passed. */
interface Pending {
  readonly input: AuditInput;
}

/**
 * Writes one batch in one transaction: locks the chain head (`SELECT … FOR UPDATE` on
 * PostgreSQL; SQLite's `BEGIN IMMEDIATE` holds the only write lock), links and hashes the events
 * one after another, inserts them and moves the head. Several replicas therefore still build
 * one linear chain; the lock is taken once per batch instead of once per event.
 */
function appendBatch(
  db: Database,
  clock: { now(): number },
  batch: readonly Pending[],
): Promise<AuditEvent[]> {
  return db.transaction<AuditEvent[], AuditTables>(async (trx) => {
    let head = trx.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1);
    if (db.dialect === 'postgres') head = head.forUpdate();
    const current = await head.executeTakeFirstOrThrow();
    const time = new Date(clock.now()).toISOString();
    let seq = Number(current.seq);
    let prevHash = current.hash;
    const events: AuditEvent[] = [];
    for (const { input } of batch) {
      seq += 1;
      const base = { ...input, seq, time, prevHash };
      const event: AuditEvent = { ...base, hash: eventHash(base) };
      events.push(event);
      prevHash = event.hash;
    }
    await trx.insertInto('audit_events').values(events.map(eventToRow)).execute();
    await trx.updateTable('audit_head').set({ seq, hash: prevHash }).where('id', '=', 1).execute();
    return events;
  });
}

function auditMetrics(metrics: Metrics) {
  return {
    failures: metrics.counter({
      name: 'gatehouse_audit_write_failures_total',
      help: 'Audit events that could not be written to the database or the file',
      labelNames: ['sink'],
    }),
    written: metrics.counter({
      name: 'gatehouse_audit_events_total',
      help: 'Audit events recorded, by decision',
      labelNames: ['decision'],
    }),
    batches: metrics.counter({
      name: 'gatehouse_audit_batches_total',
      help: 'Database transactions (each with one file append) that wrote audit events',
    }),
    waits: metrics.counter({
      name: 'gatehouse_audit_backpressure_waits_total',
      help: 'Times a caller waited because the audit queue was full',
    }),
  };
}

/** Writes batches to the database, then the file; counts and logs what fails, never throws. */
function batchWriter(options: AuditLogOptions, counters: ReturnType<typeof auditMetrics>) {
  const { db, file, clock, log } = options;
  const { failures, written } = counters;

  const writeFile = async (events: readonly AuditEvent[]) => {
    try {
      await appendFile(file, events.map((e) => `${JSON.stringify(e)}\n`).join(''), {
        encoding: 'utf8',
        mode: 0o600,
      });
    } catch (error) {
      failures.inc({ sink: 'file' }, events.length);
      log.error('Audit events not written to the audit file', {
        firstSeq: events[0]?.seq,
        count: events.length,
        file,
        error,
      });
    }
  };

  const commit = async (batch: readonly Pending[]): Promise<AuditEvent[]> => {
    try {
      const events = await appendBatch(db, clock, batch);
      counters.batches.inc();
      return events;
    } catch (error) {
      // One event the database refuses must not take its batch with it: retry one by one.
      // In order, so the file still receives events in sequence order.
      if (batch.length > 1) {
        const one: AuditEvent[] = [];
        for (const pending of batch) one.push(...(await commit([pending])));
        return one;
      }
      failures.inc({ sink: 'database' });
      log.error('Audit event not recorded in the database', {
        action: batch[0]?.input.action,
        actor: batch[0]?.input.actor,
        error,
      });
      return [];
    }
  };

  return async (batch: readonly Pending[]) => {
    const events = await commit(batch);
    for (const e of events) written.inc({ decision: e.decision });
    if (events.length > 0) await writeFile(events);
  };
}

/**
 * The audit trail. Events queue in memory (bounded; a full queue makes `record` wait) and one
 * writer drains them in batches: one transaction and one JSONL append per batch, so the chain
 * stays linear and the file receives events in sequence order. The file is a second witness
 * that `verify` compares with the database.
 */
export async function createAuditLog(options: AuditLogOptions): Promise<ClosableAuditLog> {
  const { db, file, log } = options;
  const batchSize = options.batchSize ?? 256;
  // One multi-row INSERT binds 12 parameters per event; SQLite allows 32766 per statement.
  if (batchSize > MAX_BATCH)
    throw new RangeError(`Audit batch size must be at most ${MAX_BATCH}, got "${batchSize}"`);
  await db.migrate(AUDIT_MIGRATIONS);
  const maxPageSize = options.maxPageSize ?? 500;
  const counters = auditMetrics(options.metrics);
  let closed = false;
  const writer = createGroupCommit<Pending>({
    batchSize,
    capacity: options.queueCapacity ?? 8192,
    onWait: () => counters.waits.inc(),
    onError: (error) => log.error('Audit writer failed', { error }),
    write: batchWriter(options, counters),
  });

  const reject = (input: AuditInput, message: string, error?: unknown) => {
    log.error(message, { action: input.action, actor: input.actor, decision: input.decision, error });
    counters.failures.inc({ sink: 'database' });
  };

  return {
    async record(input) {
      if (closed) return reject(input, 'Audit event after the audit log closed dropped');
      if (!DECISIONS.has(input.decision))
        return reject(input, 'Audit event with an unknown decision dropped');
      let plain: AuditInput;
      try {
        // A JSON round trip first: what is hashed must be exactly what the database and the
        // file give back (Dates become strings, undefined members disappear, bigint fails here).
        plain = JSON.parse(JSON.stringify(input)) as AuditInput;
      } catch (error) {
        return reject(input, 'Audit event not recorded in the database', error);
      }
      await writer.push({ input: plain });
    },
    query: (query) => queryEvents(db, query, maxPageSize),
    async verify() {
      await writer.flush();
      return verifyAudit(db, file, { fileComplete: db.dialect === 'sqlite' });
    },
    flush: () => writer.flush(),
    async close() {
      closed = true;
      await writer.flush();
    },
  };
}
