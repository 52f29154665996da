/**
 * Audit events a client can cause at will (refused connections, requests to a backend that is
 * down), bounded so that a flood cannot turn the audit log against the data path. Metrics count
 * every event; the audit log gets the first `perWindow` events of an auditor in each window one
 * by one, and the rest as one summary event per resource and reason when the window ends, with
 * the count and a few sample client addresses. So beyond the budget an event costs no database
 * write, and the audit queue, the database and the event loop's memory stay bounded.
 */
import type { AuditInput } from '#core/audit';

export interface BoundedAuditOptions {
  /** The audit action, e.g. `edge.connection.blocked`. */
  readonly action: string;
  readonly perWindow: number;
  readonly windowMs: number;
  /** Milliseconds, monotonic enough for windows (Date.now by default). */
  readonly now?: () => number;
}

/** One event; `stable` holds the details that are the same for every event of its summary. */
export interface BoundedEvent {
  readonly resource: string;
  readonly reason: string;
  readonly clientIp: string;
  readonly decision: 'deny' | 'error';
  readonly stable: Readonly<Record<string, unknown>>;
  readonly details?: Readonly<Record<string, unknown>>;
}

export interface BoundedAudit {
  record(event: BoundedEvent): void;
  /** Writes the pending summaries now (shutdown). */
  flush(): void;
}

const SAMPLE_CLIENTS = 5;

interface Summary {
  readonly first: BoundedEvent;
  count: number;
  readonly clients: Set<string>;
}

/** Creates an auditor; `sink` is the fire-and-forget audit call. */
export function createBoundedAudit(
  options: BoundedAuditOptions,
  sink: (event: AuditInput) => void,
): BoundedAudit {
  const now = options.now ?? Date.now;
  let windowStart = Number.NEGATIVE_INFINITY;
  let audited = 0;
  let suppressed = new Map<string, Summary>();
  let timer: NodeJS.Timeout | undefined;

  const emit = (
    event: BoundedEvent,
    clientIp: string | undefined,
    details: Readonly<Record<string, unknown>>,
  ) =>
    sink({
      actor: 'anonymous',
      action: options.action,
      resource: event.resource,
      decision: event.decision,
      reason: event.reason,
      ...(clientIp === undefined ? {} : { clientIp }),
      details,
    });

  const flush = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    const pending = suppressed;
    suppressed = new Map();
    for (const { first, count, clients } of pending.values()) {
      emit(first, undefined, {
        ...first.stable,
        summary: true,
        count,
        windowMs: options.windowMs,
        sampleClients: [...clients],
      });
    }
  };

  return {
    record(event) {
      const at = now();
      if (at - windowStart >= options.windowMs) {
        flush();
        windowStart = at;
        audited = 0;
      }
      if (audited < options.perWindow) {
        audited++;
        emit(event, event.clientIp, { ...event.stable, ...event.details });
        return;
      }
      const key = `${event.resource}\u0000${event.reason}`;
      let summary = suppressed.get(key);
      if (summary === undefined) {
        summary = { first: event, count: 0, clients: new Set() };
        suppressed.set(key, summary);
      }
      summary.count++;
      if (summary.clients.size < SAMPLE_CLIENTS) summary.clients.add(event.clientIp);
      if (timer === undefined) {
        timer = setTimeout(flush, Math.max(0, windowStart + options.windowMs - at));
        timer.unref();
      }
    },
    flush,
  };
}
