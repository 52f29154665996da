/**
 * Audit of refused connections that a flood cannot turn against the data path. Each refusal is
 * always counted in metrics; the audit log gets the first `perWindow` refusals of a listener in
 * each window one by one, and the rest as one summary event per reason when the window ends
 * (with the count and a few sample client addresses). A reset costs no database write, so a
 * client that opens thousands of connections a second cannot fill the audit queue, the
 * database or the memory of the event loop.
 */
import type { AuditInput } from '#core/audit';

/** How many refusals a listener audits one by one per window; the rest are summarised. */
export interface RefusalAuditOptions {
  readonly listener: string;
  readonly perWindow: number;
  readonly windowMs: number;
  /** Milliseconds, monotonic enough for windows (Date.now by default). */
  readonly now?: () => number;
}

/** One refusal: the reason (metric label), catalogued code and client address. */
export interface Refusal {
  readonly reason: string;
  readonly code: string;
  readonly clientIp: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

export interface RefusalAudit {
  record(refusal: Refusal): void;
  /** Writes the pending summaries now (listener close). */
  flush(): void;
}

const SAMPLE_CLIENTS = 5;

interface Summary {
  readonly code: string;
  count: number;
  readonly clients: Set<string>;
}

/** Creates the refusal auditor of one listener; `sink` is the fire-and-forget audit call. */
export function createRefusalAudit(
  options: RefusalAuditOptions,
  sink: (event: AuditInput) => void,
): RefusalAudit {
  const now = options.now ?? Date.now;
  const resource = `listener:${options.listener}`;
  let windowStart = Number.NEGATIVE_INFINITY;
  let audited = 0;
  let suppressed = new Map<string, Summary>();
  let timer: NodeJS.Timeout | undefined;

  const emit = (reason: string, clientIp: string | undefined, details: Readonly<Record<string, unknown>>) =>
    sink({
      actor: 'anonymous',
      action: 'edge.connection.blocked',
      resource,
      decision: 'deny',
      reason,
      ...(clientIp === undefined ? {} : { clientIp }),
      details,
    });

  const flush = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    const pending = suppressed;
    suppressed = new Map();
    for (const [reason, summary] of pending) {
      emit(reason, undefined, {
        code: summary.code,
        summary: true,
        count: summary.count,
        windowMs: options.windowMs,
        sampleClients: [...summary.clients],
      });
    }
  };

  return {
    record({ reason, code, clientIp, details = {} }) {
      const at = now();
      if (at - windowStart >= options.windowMs) {
        flush();
        windowStart = at;
        audited = 0;
      }
      if (audited < options.perWindow) {
        audited++;
        emit(reason, clientIp, { code, ...details });
        return;
      }
      let summary = suppressed.get(reason);
      if (summary === undefined) {
        summary = { code, count: 0, clients: new Set() };
        suppressed.set(reason, summary);
      }
      summary.count++;
      if (summary.clients.size < SAMPLE_CLIENTS) summary.clients.add(clientIp);
      if (timer === undefined) {
        timer = setTimeout(flush, Math.max(0, windowStart + options.windowMs - at));
        timer.unref();
      }
    },
    flush,
  };
}
