import { appendFile, type FileHandle, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { CompiledQuery } from 'kysely';
import type { Logger } from '#core/log';
import type { Metrics } from '#core/metrics';
import type { Database } from '#core/storage';
import { eventHash } from './chain.ts';
import { createGroupCommit, type GroupCommit } from './group-commit.ts';
import { AUDIT_MIGRATIONS } from './migrations.ts';
import type { AuditEvent, AuditInput, AuditLog } from './port.ts';
import { queryEvents } from './query.ts';
import { type AuditRow, type AuditTables, eventToRow } from './rows.ts';
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
  /**
   * Writes what is queued, keeps in the spool file (`<file>.pending`, replayed at the next start)
   * what the unreachable database still refuses, then refuses (logs and counts) further events.
   */
  close(): Promise<void>;
}

const DECISIONS = new Set(['allow', 'deny', 'error', 'info']);
const MAX_BATCH = 2000;

/** An event waiting for the writer: a JSON round trip of what the caller passed, and when. */
interface Pending {
  readonly input: AuditInput;
  /** ISO time of the `record` call: an event held through an outage keeps its own time. */
  readonly time: string;
}

/**
 * What a JSON round trip gives back for an event whose members are all strings (or undefined):
 * the same strings, in the same order, without the undefined members. Undefined for any other
 * event (details, a number, a method), which takes the round trip. Most events are flat, and
 * the round trip (a string of the whole event, then a parse) is paid per event.
 */
function plainCopy(input: AuditInput): AuditInput | undefined {
  const copy: Record<string, string> = {};
  for (const name of Object.keys(input)) {
    const value = (input as unknown as Record<string, unknown>)[name];
    if (value === undefined) continue;
    // `__proto__` would set the copy's prototype instead of a member.
    if (typeof value !== 'string' || name === '__proto__') return undefined;
    copy[name] = value.toWellFormed();
  }
  return copy as unknown as AuditInput;
}

/** A JSON.parse reviver: strings with an unpaired UTF-16 surrogate get U+FFFD in its place. */
function wellFormed(_key: string, value: unknown): unknown {
  return typeof value === 'string' ? value.toWellFormed() : value;
}

/** How often the writer checks that the audit file it holds open is still the one at its path. */
const REOPEN_CHECK_MS = 1000;

/** How long the writer waits for the database to answer a ping after a failed write. */
const PING_TIMEOUT_MS = 2000;

/** The columns of `audit_events`, in `eventToRow` order. */
const COLUMNS = [
  'seq',
  'time',
  'actor',
  'action',
  'resource',
  'decision',
  'reason',
  'request_id',
  'client_ip',
  'details',
  'prev_hash',
  'hash',
] as const satisfies readonly (keyof AuditRow)[];

/**
 * The statements of a batch, as SQL text built once per dialect (and per batch size for the
 * insert) instead of through the query builder for every batch: building and compiling a
 * 256-row insert cost more CPU than SQLite spent running it.
 */
function batchStatements(dialect: Database['dialect']) {
  const mark = dialect === 'postgres' ? (i: number) => `$${i}` : () => '?';
  const inserts = new Map<number, string>();
  return {
    head: `select "seq", "hash" from "audit_head" where "id" = ${mark(1)}${dialect === 'postgres' ? ' for update' : ''}`,
    moveHead: `update "audit_head" set "seq" = ${mark(1)}, "hash" = ${mark(2)} where "id" = ${mark(3)}`,
    insert(rows: number): string {
      let text = inserts.get(rows);
      if (text === undefined) {
        const tuples: string[] = [];
        for (let r = 0; r < rows; r += 1) {
          const marks = COLUMNS.map((_, c) => mark(r * COLUMNS.length + c + 1));
          tuples.push(`(${marks.join(', ')})`);
        }
        text = `insert into "audit_events" (${COLUMNS.map((c) => `"${c}"`).join(', ')}) values ${tuples.join(', ')}`;
        inserts.set(rows, text);
      }
      return text;
    },
  };
}

/**
 * Writes one batch in one transaction: locks the chain head (`SELECT … FOR UPDATE` on
 * PostgreSQL; SQLite's `BEGIN IMMEDIATE` holds the only write lock), links and hashes the events
 * one after another, inserts them and moves the head. Several replicas therefore still build
 * one linear chain; the lock is taken once per batch instead of once per event.
 */
function appendBatch(
  db: Database,
  statements: ReturnType<typeof batchStatements>,
  batch: readonly Pending[],
): Promise<AuditEvent[]> {
  return db.transaction<AuditEvent[], AuditTables>(async (trx) => {
    const { rows } = await trx.executeQuery<{ seq: number | string | bigint; hash: string }>(
      CompiledQuery.raw(statements.head, [1]),
    );
    const current = rows[0];
    if (current === undefined) throw new Error('The audit chain head row is missing');
    let seq = Number(current.seq);
    let prevHash = current.hash;
    const events: AuditEvent[] = [];
    const values: unknown[] = [];
    for (const { input, time } of batch) {
      seq += 1;
      const base = { ...input, seq, time, prevHash };
      const event: AuditEvent = { ...base, hash: eventHash(base) };
      events.push(event);
      const row = eventToRow(event);
      for (const column of COLUMNS) values.push(row[column]);
      prevHash = event.hash;
    }
    await trx.executeQuery(CompiledQuery.raw(statements.insert(batch.length), values));
    await trx.executeQuery(CompiledQuery.raw(statements.moveHead, [seq, prevHash, 1]));
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
    retries: metrics.counter({
      name: 'gatehouse_audit_write_retries_total',
      help: 'Times the audit writer waited to retry events the unreachable database refused',
    }),
    held: metrics.gauge({
      name: 'gatehouse_audit_held_events',
      help: 'Audit events held in memory until the database is reachable again',
    }),
    spooled: metrics.counter({
      name: 'gatehouse_audit_spooled_events_total',
      help: 'Audit events kept in the spool file at shutdown because the database was unreachable',
    }),
  };
}

/**
 * Opens the audit file for appending. A file that does not end with a newline ends inside a
 * record whose append a crash cut short: the line is ended first, so the next record starts on
 * a line of its own instead of being glued to the fragment (and unreadable with it). The
 * fragment stays as it is; `verify` reports it.
 */
async function openForAppend(file: string, log: Logger): Promise<FileHandle> {
  const handle = await open(file, 'a+', 0o600);
  try {
    const { size } = await handle.stat();
    if (size > 0) {
      const last = Buffer.alloc(1);
      await handle.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) {
        await handle.appendFile('\n');
        log.warn(
          'The audit file ended inside a record (an append cut short); later records start on a new line',
          {
            file,
          },
        );
      }
    }
    return handle;
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/**
 * Writes batches to the database, then the file; counts and logs what fails, never throws. A
 * batch the database refuses while it does not answer a ping is handed back (the database is
 * down: the events wait for it); one refused while the database answers is retried event by
 * event, so a single bad event does not take its neighbours with it.
 */
function batchWriter(options: AuditLogOptions, counters: ReturnType<typeof auditMetrics>) {
  const { db, file, log } = options;
  const { failures, written } = counters;
  const statements = batchStatements(db.dialect);

  // The file stays open between batches (O_APPEND: each append lands at the end even when
  // something else writes the file too); opening and closing it per batch cost more than the
  // write. At most once a second (and after a failed append) the path is checked: a file that
  // was renamed away or removed (log rotation) is closed and the path opened again.
  let handle: { readonly file: Promise<FileHandle>; checkedAt: number } | undefined;
  const dropHandle = async () => {
    const held = handle;
    handle = undefined;
    await held?.file.then((h) => h.close()).catch(() => undefined);
  };
  const replaced = async (held: FileHandle) => {
    try {
      const [atPath, opened] = await Promise.all([stat(file), held.stat()]);
      return atPath.ino !== opened.ino || atPath.dev !== opened.dev;
    } catch {
      return true;
    }
  };
  const openFile = async (): Promise<FileHandle> => {
    const now = options.clock.now();
    if (handle !== undefined && now - handle.checkedAt >= REOPEN_CHECK_MS) {
      handle.checkedAt = now;
      if (await replaced(await handle.file)) await dropHandle();
    }
    handle ??= { file: openForAppend(file, log), checkedAt: now };
    return handle.file;
  };
  const appendEvents = async (events: readonly AuditEvent[]) => {
    try {
      const held = await openFile();
      await held.appendFile(events.map((e) => `${JSON.stringify(e)}\n`).join(''), 'utf8');
    } catch (error) {
      await dropHandle();
      failures.inc({ sink: 'file' }, events.length);
      log.error('Audit events not written to the audit file', {
        firstSeq: events[0]?.seq,
        count: events.length,
        file,
        error,
      });
    }
  };

  const reachable = () =>
    db.ping(PING_TIMEOUT_MS).then(
      () => true,
      () => false,
    );

  /** The events written (in order) and the suffix of `batch` left for a retry. */
  const commit = async (
    batch: readonly Pending[],
  ): Promise<{ events: AuditEvent[]; left: readonly Pending[] }> => {
    try {
      const events = await appendBatch(db, statements, batch);
      counters.batches.inc();
      return { events, left: [] };
    } catch (error) {
      if (!(await reachable())) return { events: [], left: batch };
      if (batch.length > 1) {
        // In order, so the file still receives events in sequence order.
        const events: AuditEvent[] = [];
        for (const [i, pending] of batch.entries()) {
          const one = await commit([pending]);
          events.push(...one.events);
          if (one.left.length > 0) return { events, left: batch.slice(i) };
        }
        return { events, left: [] };
      }
      failures.inc({ sink: 'database' });
      log.error('Audit event not recorded in the database', {
        action: batch[0]?.input.action,
        actor: batch[0]?.input.actor,
        error,
      });
      return { events: [], left: [] };
    }
  };

  return {
    async write(batch: readonly Pending[]): Promise<readonly Pending[]> {
      const { events, left } = await commit(batch);
      // One increment per decision and batch, not per event.
      const perDecision = new Map<string, number>();
      for (const e of events) perDecision.set(e.decision, (perDecision.get(e.decision) ?? 0) + 1);
      for (const [decision, n] of perDecision) written.inc({ decision }, n);
      if (events.length > 0) await appendEvents(events);
      return left;
    },
    /** Closes the file; a later write opens it again. */
    close: dropHandle,
  };
}

/** The spool: events still unwritten at shutdown, one `Pending` per line, replayed at start. */
async function readSpool(path: string, log: Logger): Promise<Pending[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const pending: Pending[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    try {
      const value = JSON.parse(line) as Partial<Pending>;
      if (typeof value.time !== 'string' || typeof value.input !== 'object' || value.input === null)
        throw new Error('expected {"input": {...}, "time": "..."}');
      pending.push({ input: value.input, time: value.time });
    } catch (error) {
      // A line cut short by a crash while spooling: say so, keep the rest.
      log.error('Unreadable line in the audit spool skipped', { file: path, line: i + 1, error });
    }
  }
  return pending;
}

/** Replaces the spool with `pending` atomically (or removes it when nothing is left). */
async function writeSpool(path: string, pending: readonly Pending[]): Promise<void> {
  if (pending.length === 0) {
    await rm(path, { force: true });
    return;
  }
  const tmp = `${path}.tmp`;
  await writeFile(tmp, pending.map((p) => `${JSON.stringify(p)}\n`).join(''), { mode: 0o600 });
  await rename(tmp, path);
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
  const spool = `${file}.pending`;
  const sink = batchWriter(options, counters);
  const writer: GroupCommit<Pending> = createGroupCommit<Pending>({
    batchSize,
    capacity: options.queueCapacity ?? 8192,
    onWait: () => counters.waits.inc(),
    onError: (error) => log.error('Audit writer failed', { error }),
    onRetry: (attempt, delayMs, held) => {
      counters.retries.inc();
      if (attempt === 1 || attempt % 20 === 0)
        log.warn('Database unreachable: audit events held in memory until it returns', {
          held,
          retryInMs: delayMs,
          attempt,
        });
    },
    async write(batch) {
      const wasHolding = writer.holding;
      const left = await sink.write(batch);
      counters.held.set({}, left.length > 0 || wasHolding ? left.length + writer.depth : 0);
      if (wasHolding && left.length === 0) log.info('Database reachable again: held audit events written');
      return left;
    },
  });

  // Events a previous run could not write before it stopped go first.
  const spooled = await readSpool(spool, log);
  if (spooled.length > 0) {
    let left: readonly Pending[] = [];
    for (let i = 0; i < spooled.length && left.length === 0; i += batchSize) {
      const chunk = spooled.slice(i, i + batchSize);
      const refused = await sink.write(chunk);
      if (refused.length > 0) left = [...refused, ...spooled.slice(i + batchSize)];
    }
    await writeSpool(spool, left);
    log.info('Audit events from the spool replayed', {
      written: spooled.length - left.length,
      left: left.length,
    });
  }

  const keep = async (pending: readonly Pending[]) => {
    if (pending.length === 0) return;
    try {
      await appendFile(spool, pending.map((p) => `${JSON.stringify(p)}\n`).join(''), { mode: 0o600 });
      counters.spooled.inc({}, pending.length);
      log.warn('Database unreachable at shutdown: audit events kept in the spool for the next start', {
        count: pending.length,
        file: spool,
      });
    } catch (error) {
      counters.failures.inc({ sink: 'database' }, pending.length);
      log.error('Audit events lost: database unreachable and spool not writable', {
        count: pending.length,
        file: spool,
        error,
      });
    }
  };

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
        // Unpaired surrogates become U+FFFD here, as the databases store them, so the hash is
        // computed on the stored form and verify agrees.
        plain = plainCopy(input) ?? (JSON.parse(JSON.stringify(input), wellFormed) as AuditInput);
      } catch (error) {
        return reject(input, 'Audit event not recorded in the database', error);
      }
      const pending: Pending = { input: plain, time: new Date(options.clock.now()).toISOString() };
      try {
        await writer.push(pending);
      } catch {
        // The log closed while this caller waited for room in the queue.
        await keep([pending]);
      }
    },
    query: (query) => queryEvents(db, query, maxPageSize),
    async verify() {
      await writer.flush();
      return verifyAudit(db, file, { fileComplete: db.dialect === 'sqlite' });
    },
    flush: () => writer.flush(),
    async close() {
      if (closed) return;
      closed = true;
      await keep(await writer.stop());
      await sink.close();
    },
  };
}
