import type { AuditInput, AuditLog } from '#core/audit';
import type { Logger } from '#core/log';

export interface KvAuditSettings {
  /** `every`: one event per allowed call; `summary`: the first call, then a count per interval. */
  readonly allowed: 'every' | 'summary';
  readonly summaryInterval: number;
  /**
   * `every`: allowed-call events wait up to this many milliseconds (or until 256 are waiting) and
   * are then recorded in the same turn, so the audit log writes them in one transaction instead
   * of one each (a lone event cost ~360 µs of CPU). 0 records each at once.
   */
  readonly gatherWindow: number;
  /** Audit events the door may have queued; beyond it new calls are shed until the log catches up. */
  readonly maxPending: number;
}

/** Allowed-call events gathered at most before they are recorded without waiting for the window. */
const MAX_GATHERED = 256;

/**
 * Records the door's decisions in the audit log without letting a fast data path outrun it:
 * writes are counted while queued, and `backlogged()` tells the guard to shed calls (the audit
 * queue of the core is unbounded, so the bound lives here). Denials are always recorded one by one.
 */
export function createKvAuditor(options: {
  readonly audit: AuditLog;
  readonly settings: () => KvAuditSettings;
  readonly log: Logger;
}) {
  const { audit } = options;
  let pending = 0;
  const inFlight = new Set<Promise<void>>();
  const counts = new Map<string, { input: AuditInput; calls: number }>();
  let windowStart = Date.now();

  const record = (input: AuditInput) => {
    const p = audit.record(input).finally(() => {
      pending -= 1;
      inFlight.delete(p);
    });
    inFlight.add(p);
  };
  // Allowed-call events waiting for the gather window; counted in `pending` from the start.
  let gathered: AuditInput[] = [];
  let gatherTimer: NodeJS.Timeout | undefined;
  const release = () => {
    if (gatherTimer !== undefined) clearTimeout(gatherTimer);
    gatherTimer = undefined;
    const batch = gathered;
    gathered = [];
    for (const input of batch) record(input);
  };
  const write = (input: AuditInput) => {
    pending += 1;
    // Decisions reach the log in the order they were taken: waiting allows go first.
    if (gathered.length > 0) release();
    record(input);
  };
  // Set by `drain`: decisions taken while the door stops (calls still running) go at once, so
  // none waits for a window that ends after the audit log has closed.
  let draining = false;
  const gather = (input: AuditInput, windowMs: number) => {
    if (windowMs <= 0 || draining) {
      write(input);
      return;
    }
    pending += 1;
    gathered.push(input);
    if (gathered.length >= MAX_GATHERED) release();
    else gatherTimer ??= setTimeout(release, windowMs);
  };
  const flush = () => {
    const windowMs = Date.now() - windowStart;
    windowStart = Date.now();
    for (const { input, calls } of counts.values()) {
      if (calls > 0) write({ ...input, reason: 'summary', details: { calls, windowMs } });
    }
    counts.clear();
  };
  let timer: NodeJS.Timeout | undefined;
  let armedMs = 0;
  /** Runs the summary windows at the configured interval; a reloaded interval re-arms them. */
  const arm = (interval: number) => {
    if (timer !== undefined && armedMs === interval) return;
    if (timer !== undefined) {
      clearInterval(timer);
      // The open window ends with the old interval's length.
      flush();
    }
    armedMs = interval;
    timer = setInterval(flush, interval).unref();
  };

  return {
    backlogged: () => pending >= options.settings().maxPending,
    pending: () => pending,
    deny(input: AuditInput) {
      write(input);
    },
    allow(input: AuditInput) {
      const settings = options.settings();
      if (settings.allowed === 'every') {
        gather(input, settings.gatherWindow);
        return;
      }
      arm(settings.summaryInterval);
      const key = `${input.actor}\n${input.action}\n${input.resource}`;
      const seen = counts.get(key);
      if (seen !== undefined) {
        seen.calls += 1;
        return;
      }
      // The first call of a principal on a namespace with a method in a window is recorded as
      // it happens.
      write(input);
      counts.set(key, { input, calls: 0 });
      if (counts.size >= 10_000) flush();
    },
    /** Writes the open summary window and waits for queued events, until `deadline` aborts. */
    async drain(deadline: AbortSignal): Promise<void> {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      draining = true;
      release();
      flush();
      const aborted = new Promise<void>((resolve) => {
        if (deadline.aborted) resolve();
        else deadline.addEventListener('abort', () => resolve(), { once: true });
      });
      while (inFlight.size > 0 && !deadline.aborted) {
        await Promise.race([Promise.allSettled(inFlight), aborted]);
      }
    },
  };
}

export type KvAuditor = ReturnType<typeof createKvAuditor>;
