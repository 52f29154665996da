/**
 * A closed-loop load driver: `concurrency` workers call `op` back to back for `seconds`; `op` gets
 * the call's sequence number and the worker's index (0..concurrency-1).
 */
export interface LoadResult {
  readonly ops: number;
  readonly errors: number;
  readonly seconds: number;
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU of this (client) process per successful call, in microseconds. */
  readonly clientCpuUs: number;
  /** The first failure, to tell deadlines from refusals. */
  readonly firstError?: string;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}

/**
 * Runs the load, bounded both in time (`seconds`) and in count (`maxOps`), and reports
 * throughput and latency percentiles of the successful calls.
 */
export async function runLoad(
  op: (i: number, worker: number) => Promise<unknown>,
  options: { readonly concurrency: number; readonly seconds: number; readonly maxOps: number },
): Promise<LoadResult> {
  const latencies = new Float64Array(options.maxOps);
  let issued = 0;
  let done = 0;
  let errors = 0;
  let firstError: string | undefined;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  const worker = async (_: unknown, w: number) => {
    while (issued < options.maxOps && performance.now() < deadline) {
      const i = issued++;
      const t = performance.now();
      try {
        await op(i, w);
        latencies[done++] = performance.now() - t;
      } catch (error) {
        errors += 1;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const sorted = latencies.slice(0, done).sort();
  return {
    ops: done,
    errors,
    seconds,
    opsPerSecond: done / seconds,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    clientCpuUs: (used.user + used.system) / Math.max(1, done),
    ...(firstError === undefined ? {} : { firstError }),
  };
}
