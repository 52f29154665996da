import type { AuditLog } from '#core/audit';
import { addressGroup } from '#core/auth';
import type { GatewayError } from '#core/errors';
import type { HttpConfig } from './config.ts';
import type { NowClock } from './deps.ts';

const MINUTE = 60_000;
// Addresses tracked within one minute; beyond this, further addresses only add to the summary.
const MAX_ADDRESSES = 10_000;
// Addresses named in a summary, the busiest first.
const SUMMARY_TOP = 10;

/** One refused authentication on an ordinary route. */
export interface AuthFailure {
  readonly clientIp: string;
  readonly requestId: string;
  /** `route:<pattern>` of the request. */
  readonly resource: string;
  /** `apikey`, `token` or `certificate`: never the credential itself. */
  readonly credential: string;
  readonly error: GatewayError;
}

/** Records refused authentications in the audit log, limited so that a flood cannot fill it. */
export interface AuthFailureAudit {
  record(failure: AuthFailure): Promise<void>;
  /** Writes the summary of what was left out so far (at shutdown). */
  flush(): Promise<void>;
}

/**
 * Audits refused authentications as `auth.failure` (deny, with the reason, client address and
 * credential kind), at most `perAddress` per client (an IPv6 /64) and `perMinute` in all per
 * minute. What is left out is counted and written as one `auth.failure.suppressed` event per
 * minute that had any (at the next failure after the minute, after a minute by timer, or at
 * shutdown), naming the busiest addresses.
 */
export function createAuthFailureAudit(deps: {
  readonly audit: () => AuditLog | undefined;
  readonly limits: () => HttpConfig['authFailureAudit'];
  readonly clock: NowClock;
}): AuthFailureAudit {
  let windowStart = deps.clock.now();
  let recorded = 0;
  let suppressed = 0;
  const perAddress = new Map<string, { recorded: number; suppressed: number }>();
  let timer: NodeJS.Timeout | undefined;

  const summarize = async (end: number) => {
    const total = suppressed;
    const start = windowStart;
    const busy = [...perAddress].filter(([, c]) => c.suppressed > 0);
    const top = busy
      .toSorted((a, b) => b[1].suppressed - a[1].suppressed)
      .slice(0, SUMMARY_TOP)
      .map(([address, c]) => ({ address, suppressed: c.suppressed }));
    const addresses = busy.length;
    windowStart = end;
    recorded = 0;
    suppressed = 0;
    perAddress.clear();
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (total === 0) return;
    await deps.audit()?.record({
      actor: 'anonymous',
      action: 'auth.failure.suppressed',
      resource: 'http',
      decision: 'deny',
      reason: `${total} further refused authentication(s) were not recorded one by one`,
      details: {
        suppressed: total,
        from: new Date(start).toISOString(),
        to: new Date(end).toISOString(),
        // Addresses past the tracking bound are counted in `suppressed` but not here.
        addresses,
        top,
      },
    });
  };

  return {
    async record(failure) {
      const now = deps.clock.now();
      if (now - windowStart >= MINUTE) await summarize(now);
      const limits = deps.limits();
      const address = addressGroup(failure.clientIp);
      let counts = perAddress.get(address);
      if (counts === undefined && perAddress.size < MAX_ADDRESSES) {
        counts = { recorded: 0, suppressed: 0 };
        perAddress.set(address, counts);
      }
      if (counts === undefined || counts.recorded >= limits.perAddress || recorded >= limits.perMinute) {
        suppressed += 1;
        if (counts !== undefined) counts.suppressed += 1;
        // Without a further failure the summary would wait for shutdown.
        timer ??= setTimeout(() => void summarize(deps.clock.now()), MINUTE).unref();
        return;
      }
      counts.recorded += 1;
      recorded += 1;
      await deps.audit()?.record({
        actor: 'anonymous',
        action: 'auth.failure',
        resource: failure.resource,
        decision: 'deny',
        reason: failure.error.message,
        requestId: failure.requestId,
        clientIp: failure.clientIp,
        details: { code: failure.error.code, credential: failure.credential },
      });
    },
    flush: () => summarize(deps.clock.now()),
  };
}
