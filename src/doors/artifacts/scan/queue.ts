import { randomUUID } from 'node:crypto';
import { GatewayError } from '#core/errors';
import type { ArtifactContext } from '../context.ts';
import { openPlaintext } from '../download.ts';
import { decide } from '../gate.ts';
import type { ArtifactTables, ItemRow } from '../store/schema.ts';
import type { ScanOutcome, Scanner, ScanTarget } from './port.ts';
import type { RandomAccess } from './zip.ts';

/** The persistent scan queue and its worker. */
export interface ScanQueue {
  /** Queues a (re)scan; the current verdict stays until it finishes. */
  enqueue(artifactId: string): Promise<void>;
  /** Looks for due jobs now instead of at the next poll. */
  kick(): void;
  /** Runs due jobs until none is left (tests and the CLI use it). */
  drain(): Promise<number>;
  start(): void;
  stop(deadline: AbortSignal): Promise<void>;
  depth(): Promise<number>;
}

async function readRange(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of source) parts.push(chunk);
  return Buffer.concat(parts);
}

/** A plaintext view of an artifact: ranges decrypt only the segments they touch. */
function targetOf(ctx: ArtifactContext, item: ItemRow): ScanTarget {
  const size = Number(item.size);
  const access: RandomAccess = {
    size,
    read: async (start, end) =>
      end < start
        ? Buffer.alloc(0)
        : readRange(await openPlaintext(ctx, item, { start, end: Math.min(end, size - 1) })),
  };
  return {
    id: item.id,
    name: item.name,
    version: item.version,
    fileName: item.file_name,
    sha256: item.digest,
    size,
    access,
    open: () => openPlaintext(ctx, item),
  };
}

/**
 * Creates the queue. Jobs live in `artifacts_scan_jobs`, so they survive restarts; a job is
 * claimed with a lease (an UPDATE guarded by the old lease, safe across replicas); failures are
 * retried with exponential backoff up to `scan.maxAttempts`.
 */
export function createScanQueue(ctx: ArtifactContext, scanner: () => Scanner): ScanQueue {
  const db = () => ctx.db.kysely<ArtifactTables>();
  let timer: NodeJS.Timeout | undefined;
  let running = 0;
  let started = false;
  const inFlight = new Set<Promise<unknown>>();
  const controller = new AbortController();

  async function claim(): Promise<ArtifactTables['artifacts_scan_jobs'] | undefined> {
    const now = ctx.clock.now();
    const candidates = await db()
      .selectFrom('artifacts_scan_jobs')
      .selectAll()
      .where('next_run_at', '<=', now)
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
      .orderBy('next_run_at')
      .limit(5)
      .execute();
    for (const job of candidates) {
      // Longer than any one scan may run (the built-in deadline, a trivy run), so no other
      // worker claims a job that is still being scanned.
      const { pollInterval, timeout, trivyTimeout } = ctx.config().scan;
      const lease = now + pollInterval * 10 + Math.max(timeout, trivyTimeout) + 60_000;
      const result = await db()
        .updateTable('artifacts_scan_jobs')
        .set({ lease_until: lease })
        .where('id', '=', job.id)
        .where((eb) =>
          job.lease_until === null ? eb('lease_until', 'is', null) : eb('lease_until', '=', job.lease_until),
        )
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 1) return job;
    }
    return undefined;
  }

  /**
   * Stores a finished scan. Report, scan state and verdict change in one transaction: a reader
   * never sees a finished scan on a still-quarantined artifact (the console stops polling at
   * that point, and under load the gap between two writes was long enough to strand it), nor a
   * verdict without its report. The status is re-read inside the transaction, so an override
   * made while the scan ran is not overwritten by it.
   */
  async function finish(item: ItemRow, outcome: ScanOutcome, jobId: string): Promise<void> {
    const now = ctx.clock.now();
    // The engine reads only the outcome and the rules, so it runs before the transaction.
    const verdict = await decide(item, outcome, ctx.config().policy.rules, ctx.clock);
    const state = await ctx.db.transaction<'gone' | 'overridden' | 'decided', ArtifactTables>(async (trx) => {
      // Locked first on PostgreSQL, as a delete locks it (then the job): a delete of the artifact
      // waits for this transaction and then removes its report, or committed before it and the
      // scan is dropped. Read without the lock, a delete committing between this read and the
      // report's insert left the report behind, and the two took the job and artifact rows in
      // opposite orders (a deadlock).
      let read = trx.selectFrom('artifacts_items').select('status_by').where('id', '=', item.id);
      if (ctx.db.dialect === 'postgres') read = read.forUpdate();
      const current = await read.executeTakeFirst();
      await trx.deleteFrom('artifacts_scan_jobs').where('id', '=', jobId).execute();
      if (current === undefined) return 'gone';
      await trx.deleteFrom('artifacts_scan_reports').where('artifact_id', '=', item.id).execute();
      await trx
        .insertInto('artifacts_scan_reports')
        .values({
          artifact_id: item.id,
          report: JSON.stringify(outcome.report),
          sbom: JSON.stringify(outcome.sbom),
          scanner: outcome.scanner,
          created_at: now,
        })
        .execute();
      // An admin override stands until an admin changes it; scans still refresh the report.
      const overridden = current.status_by === 'override';
      await trx
        .updateTable('artifacts_items')
        .set({
          scan_state: 'done',
          scanned_at: now,
          ...(overridden
            ? {}
            : {
                status: verdict.status,
                status_reason: verdict.reason,
                status_by: 'policy',
                policy_version: verdict.policyVersion,
              }),
        })
        .where('id', '=', item.id)
        .execute();
      return overridden ? 'overridden' : 'decided';
    });
    if (state === 'gone') return;
    const resource = `artifact:${item.repository}/${item.name}@${item.version}#${item.id}`;
    await ctx.audit({
      actor: 'system',
      action: 'artifacts.scan',
      resource,
      decision: 'info',
      reason: `Scanned by ${outcome.scanner}: ${outcome.packages.length} packages, ${outcome.findings.length} vulnerabilities`,
      details: {
        packages: outcome.packages.length,
        findings: outcome.findings.length,
        problems: outcome.problems.length,
        databaseUpdatedAt: outcome.databaseUpdatedAt ?? null,
      },
    });
    if (state === 'overridden') return;
    ctx.metrics.verdicts.inc({ status: verdict.status, by: 'policy' });
    await ctx.audit({
      actor: 'system',
      action: 'artifacts.verdict',
      resource,
      decision: verdict.status === 'approved' ? 'allow' : 'deny',
      reason: verdict.reason,
      details: { policyVersion: verdict.policyVersion, denials: verdict.denials.slice(0, 20) },
    });
  }

  async function fail(
    job: ArtifactTables['artifacts_scan_jobs'],
    item: ItemRow | undefined,
    error: unknown,
  ): Promise<void> {
    const attempts = job.attempts + 1;
    const config = ctx.config().scan;
    const message = error instanceof Error ? error.message : String(error);
    ctx.log.warn('artifact scan failed', { artifactId: job.artifact_id, attempts, error });
    if (attempts >= config.maxAttempts || item === undefined) {
      await db().deleteFrom('artifacts_scan_jobs').where('id', '=', job.id).execute();
      if (item !== undefined)
        await db()
          .updateTable('artifacts_items')
          .set({ scan_state: 'failed' })
          .where('id', '=', item.id)
          .execute();
    } else {
      const delay = config.retryBackoff * 2 ** (attempts - 1);
      // Back to pending while it waits for the retry: "scanning" would claim work that is not running.
      await db()
        .updateTable('artifacts_items')
        .set({ scan_state: 'pending' })
        .where('id', '=', job.artifact_id)
        .execute();
      await db()
        .updateTable('artifacts_scan_jobs')
        .set({
          attempts,
          next_run_at: ctx.clock.now() + delay,
          lease_until: null,
          last_error: message.slice(0, 500),
        })
        .where('id', '=', job.id)
        .execute();
    }
    await ctx.audit({
      actor: 'system',
      action: 'artifacts.scan',
      resource: `artifact:${job.artifact_id}`,
      decision: 'error',
      reason: `Scan attempt ${attempts} failed: ${message}`,
      details: { attempts, final: attempts >= config.maxAttempts },
    });
  }

  async function runOne(): Promise<boolean> {
    const job = await claim();
    if (job === undefined) return false;
    const item = await db()
      .selectFrom('artifacts_items')
      .selectAll()
      .where('id', '=', job.artifact_id)
      .executeTakeFirst();
    const s = scanner();
    const stopTimer = ctx.metrics.scanDuration.startTimer({ scanner: s.name });
    try {
      if (item === undefined)
        throw new GatewayError('GW_ERR_ARTIFACTS_NOT_FOUND', { message: `No artifact "${job.artifact_id}"` });
      await db()
        .updateTable('artifacts_items')
        .set({ scan_state: 'scanning' })
        .where('id', '=', item.id)
        .execute();
      const outcome = await s.scan(targetOf(ctx, item), controller.signal);
      await finish(item, outcome, job.id);
      stopTimer({ result: 'ok' });
    } catch (error) {
      stopTimer({ result: 'error' });
      await fail(job, item, error);
    }
    return true;
  }

  async function depth(): Promise<number> {
    const row = await db()
      .selectFrom('artifacts_scan_jobs')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirst();
    const n = Number(row?.n ?? 0);
    ctx.metrics.scanQueueDepth.set({}, n);
    return n;
  }

  function pump(): void {
    if (!started || running >= ctx.config().scan.concurrency || controller.signal.aborted) return;
    {
      running += 1;
      const p = runOne()
        .catch((error: unknown) => {
          ctx.log.error('scan worker error', { error });
          return false;
        })
        .then((worked) => {
          running -= 1;
          inFlight.delete(p);
          if (worked) pump();
          void depth().catch(() => undefined);
        });
      inFlight.add(p);
    }
  }

  return {
    async enqueue(artifactId) {
      const now = ctx.clock.now();
      const existing = await db()
        .selectFrom('artifacts_scan_jobs')
        .select('id')
        .where('artifact_id', '=', artifactId)
        .executeTakeFirst();
      if (existing === undefined) {
        if ((await depth()) >= ctx.config().scan.queueLimit) {
          throw new GatewayError('GW_ERR_ARTIFACTS_SCAN_QUEUE_FULL', { message: 'The scan queue is full' });
        }
        await db()
          .insertInto('artifacts_scan_jobs')
          .values({
            id: randomUUID(),
            artifact_id: artifactId,
            attempts: 0,
            next_run_at: now,
            lease_until: null,
            last_error: null,
            created_at: now,
          })
          .execute();
      } else {
        await db()
          .updateTable('artifacts_scan_jobs')
          .set({ next_run_at: now, attempts: 0 })
          .where('id', '=', existing.id)
          .execute();
      }
      await db()
        .updateTable('artifacts_items')
        .set({ scan_state: 'pending' })
        .where('id', '=', artifactId)
        .execute();
      pump();
    },
    kick: pump,
    async drain() {
      let n = 0;
      // Background runs started by the worker finish first, so the caller sees their results.
      while (inFlight.size > 0) await Promise.allSettled(inFlight);
      while (await runOne()) n += 1;
      while (inFlight.size > 0) await Promise.allSettled(inFlight);
      await depth();
      return n;
    },
    start() {
      started = true;
      timer = setInterval(pump, ctx.config().scan.pollInterval);
      timer.unref();
      pump();
    },
    async stop(deadline) {
      if (timer !== undefined) clearInterval(timer);
      const abort = () => controller.abort();
      deadline.addEventListener('abort', abort, { once: true });
      await Promise.allSettled(inFlight);
      deadline.removeEventListener('abort', abort);
      controller.abort();
    },
    depth,
  };
}
