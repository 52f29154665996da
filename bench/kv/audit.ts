/**
 * The audit path of the kv door on its own (docs/benchmarks.md, "kv"): CPU per audit event of
 * `createAuditLog` on SQLite, recorded the way the kv door records allowed calls (flat events,
 * fire-and-forget, at most `--in-flight` queued). No network, no other process: the figure
 * moves only with the audit code, so steps too small for the 2-core end-to-end benchmark show.
 * Run: `node_modules/.bin/node bench/kv/audit.ts [--events 100000] [--in-flight 64] [--runs 3]`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createAuditLog } from '#core/audit';
import { silentLogger } from '#core/log';
import { createMetrics } from '#core/metrics';
import { createSqliteDatabase } from '#core/storage';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '100000' },
    'in-flight': { type: 'string', default: '64' },
    runs: { type: 'string', default: '3' },
  },
});
const EVENTS = Number(values.events);
const IN_FLIGHT = Number(values['in-flight']);

interface Run {
  readonly cpuUs: number;
  readonly wallMs: number;
  /** Events per database transaction: per-batch costs (commit, file append) divide by it. */
  readonly perBatch: number;
}

async function run(): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-audit-bench-'));
  const db = await createSqliteDatabase({ file: join(dir, 'gatehouse.db') });
  const metrics = createMetrics({ processMetrics: false });
  const audit = await createAuditLog({
    db,
    file: join(dir, 'audit.jsonl'),
    clock: { now: () => Date.now() },
    log: silentLogger(),
    metrics,
  });
  try {
    const startCpu = process.cpuUsage();
    const startWall = performance.now();
    let pending = 0;
    let wake: (() => void) | undefined;
    for (let i = 0; i < EVENTS; i += 1) {
      // What the kv guard records for an allowed call.
      pending += 1;
      void audit
        .record({
          actor: 'u_0123456789abcdef',
          action: i % 2 === 0 ? 'kv.Set' : 'kv.Get',
          resource: 'kv:bench',
          decision: 'allow',
          reason: 'role "operator" grants "kv:write" on "bench"',
          clientIp: '127.0.0.1',
        })
        .finally(() => {
          pending -= 1;
          wake?.();
        });
      // Calls arrive a few per event-loop turn; the writer runs between them.
      if (pending >= IN_FLIGHT) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
      if (i % 8 === 7) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await audit.flush();
    const cpu = process.cpuUsage(startCpu);
    const wallMs = performance.now() - startWall;
    const { body } = await metrics.render();
    const batches = Number(/^gatehouse_audit_batches_total (\d+)/m.exec(body)?.[1]);
    return { cpuUs: (cpu.user + cpu.system) / EVENTS, wallMs, perBatch: EVENTS / batches };
  } finally {
    await audit.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const results: Run[] = [];
for (let r = 0; r < Number(values.runs); r += 1) results.push(await run());
const cpu = results.map((r) => r.cpuUs).toSorted((a, b) => a - b);
console.log(
  `audit: ${EVENTS} events, at most ${IN_FLIGHT} in flight, SQLite; CPU per event (µs) per run: ${results
    .map((r) => r.cpuUs.toFixed(1))
    .join(', ')}; median ${cpu[Math.floor(cpu.length / 2)]?.toFixed(1)}; events/s ${results
    .map((r) => ((EVENTS / r.wallMs) * 1000).toFixed(0))
    .join(', ')}; events per batch ${results.map((r) => r.perBatch.toFixed(0)).join(', ')}`,
);
