import type { Clock, HealthRegistry, HealthStatus } from './app.ts';

/** Options of `createHealthRegistry`. */
export interface HealthRegistryOptions {
  readonly clock: Clock;
  /** Default deadline of one check run in milliseconds. */
  readonly timeoutMs?: number;
  /**
   * Reuse a finished run for this many milliseconds, so that probes from several load balancers
   * do not each ping the database; 0 only coalesces concurrent runs.
   */
  readonly cacheMs?: number;
}

type Report = Awaited<ReturnType<HealthRegistry['check']>>;

async function runOne(check: () => Promise<HealthStatus>, timeoutMs: number): Promise<HealthStatus> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<HealthStatus>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, detail: `timed out after ${timeoutMs}ms` }), timeoutMs);
  });
  try {
    return await Promise.race([
      check().then(
        (status) => ({
          ok: status.ok,
          ...(status.detail === undefined ? {} : { detail: status.detail }),
        }),
        (error: unknown) => ({ ok: false, detail: error instanceof Error ? error.message : String(error) }),
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The readiness checks behind `/readyz` and `/api/health`. Checks run concurrently, each bounded
 * by the deadline; one that throws or times out is reported as not ok with the reason.
 */
export function createHealthRegistry(options: HealthRegistryOptions): HealthRegistry {
  const checks = new Map<string, () => Promise<HealthStatus>>();
  const defaultTimeout = options.timeoutMs ?? 2000;
  const cacheMs = options.cacheMs ?? 0;
  let running: Promise<Report> | undefined;
  let last: { readonly at: number; readonly report: Report } | undefined;

  async function run(timeoutMs: number): Promise<Report> {
    const names = [...checks.keys()];
    const results = await Promise.all(names.map((name) => runOne(checks.get(name) ?? noCheck, timeoutMs)));
    const out: Record<string, HealthStatus> = {};
    names.forEach((name, i) => {
      out[name] = results[i] ?? { ok: false };
    });
    return { ok: results.every((r) => r.ok), checks: out };
  }

  return {
    register(name, check) {
      if (!/^[a-z0-9][a-z0-9:._-]{0,62}$/.test(name)) {
        throw new TypeError(`Health check name "${name}" must be lower-case letters, digits and ":._-"`);
      }
      if (checks.has(name)) throw new TypeError(`Health check "${name}" is already registered`);
      checks.set(name, check);
    },
    check(timeoutMs = defaultTimeout) {
      if (last !== undefined && options.clock.now() - last.at < cacheMs) return Promise.resolve(last.report);
      running ??= run(timeoutMs)
        .then((report) => {
          last = { at: options.clock.now(), report };
          return report;
        })
        .finally(() => {
          running = undefined;
        });
      return running;
    },
  };
}

const noCheck = () => Promise.resolve({ ok: false, detail: 'unregistered' });
