/**
 * kv door benchmark (docs/benchmarks.md, "kv"). In one run, on this machine:
 *  1. starts `gatehouse serve` in its own process with the kv door on TLS 1.3, external JWT
 *     authentication (a JWKS issuer run by this script), the rate limiter (generous quota, so it
 *     is evaluated but never refuses), metrics, audit, and a Redis driver on the same Redis,
 *  2. from this one Node process, drives Set and Get of 1 KiB values at concurrency 64:
 *     first with ioredis straight to Redis (SET/GET, one pipelined connection), then through the
 *     gateway with a gRPC client on one HTTP/2 connection (like the single ioredis connection):
 *     by default the lean node:http2 client of bench/kv/grpc-client.ts, with `--client connect`
 *     the product's Connect client; as context, ioredis on 64 connections with one command in
 *     flight each (no pipelining),
 *     then the same 64 callers through the product's client batching (`createKvBatcher`, ADR
 *     0160): the calls of one event-loop turn travel as one BatchGet or BatchSet,
 *  3. prints ops/s, p50/p99 latency, CPU per call of this client process, of the gateway
 *     process and of Redis, the gateway/direct ratios and the gateway's peak RSS.
 * The gateway runs with the Node flags of `npm start` (ADR 0100, 0101). Every phase runs once per
 * round (`--rounds`, 3), each gateway phase next to its direct baseline; the table gives medians
 * and each gateway/direct ratio is the median of the per-round ratios, with the share of CPU
 * time the hypervisor stole during each phase (/proc/stat), since this VM's neighbours vary;
 * figures from phases with much steal are not comparable.
 * Run: `node_modules/.bin/node bench/kv.ts [--seconds 5] [--rounds 3] [--concurrency 64] [--redis URL] [--audit every|summary]
 *   [--client lean|connect] [--batch-items 64] [--phases word,word] [--gateway-flags=--trace-gc]
 *   [--cpu-prof-dir DIR]`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { processEnvironment, testServices } from '#core/config';
import {
  BatchGetRequestSchema,
  BatchGetResponseSchema,
  BatchSetRequestSchema,
  BatchSetResponseSchema,
  GetRequestSchema,
  GetResponseSchema,
  SetRequestSchema,
  SetResponseSchema,
} from '#gen/gatehouse/kv/v1/kv_pb.ts';
import { createKvBatcher, createKvClient, type KvBatchCalls } from '../src/doors/kv/index.ts';
import { AUDIENCE, ISSUER, startIdp } from '../test/integration/kv/harness.ts';
import { startFlags } from '../src/testing/start-gateway.ts';
import { median } from '../src/testing/stats.ts';
import { createBenchGrpcClient } from './kv/grpc-client.ts';
import { type LoadResult, runLoad } from './kv/load.ts';
import { closedPort } from '#testing/services';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '64' },
    redis: { type: 'string', default: testServices().redisUrl ?? 'redis://127.0.0.1:6379' },
    audit: { type: 'string', default: 'every' },
    client: { type: 'string', default: 'lean' },
    'batch-items': { type: 'string', default: '64' },
    /** Run only the phases whose names contain one of these comma-separated words. */
    phases: { type: 'string', default: '' },
    /** Extra Node flags of the gateway process, space-separated (e.g. `--trace-gc`). */
    'gateway-flags': { type: 'string', default: '' },
    'cpu-prof-dir': { type: 'string' },
  },
});
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const CONCURRENCY = Number(values.concurrency);
const KEYS = 1000;
const VALUE = Buffer.alloc(1024, 'v');
const MAX_OPS = 5_000_000;
if (values.client !== 'lean' && values.client !== 'connect') {
  throw new TypeError(`--client must be "lean" or "connect", not "${values.client}"`);
}

function peakRssMiB(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]);
  return kb / 1024;
}

async function startGateway(home: string, kvPort: number, jwksUrl: string): Promise<ChildProcess> {
  const config = {
    home,
    log: { level: 'warn' },
    server: { listen: '127.0.0.1:0' },
    auth: {
      jwks: [{ name: 'bench', url: jwksUrl, issuer: ISSUER, audiences: [AUDIENCE], rolesClaim: 'roles' }],
    },
    kv: {
      listen: `127.0.0.1:${kvPort}`,
      drivers: { redis: { type: 'redis', url: values.redis, keyPrefix: 'gatehouse-bench:gw:' } },
      defaultDriver: 'redis',
      limits: { requestsPerSecond: 10_000_000, burst: 10_000_000, maxInFlight: 4096 },
      audit: { allowed: values.audit === 'summary' ? 'summary' : 'every' },
    },
  };
  const file = join(home, 'gatehouse.yaml');
  writeFileSync(file, JSON.stringify(config));
  const env = processEnvironment();
  const child = spawn(
    process.execPath,
    [
      // The V8 flags of `npm start` (ADR 0100, 0101), as deployed, then any extra ones.
      ...startFlags(),
      ...values['gateway-flags'].split(' ').filter((f) => f !== ''),
      ...(values['cpu-prof-dir'] === undefined
        ? []
        : ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof-dir']}`]),
      resolve(import.meta.dirname, '../src/main.ts'),
      'serve',
      '--config',
      file,
    ],
    { env: { PATH: env['PATH'] ?? '', HOME: env['HOME'] ?? home }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('gateway did not start in 30 s')), 30_000);
    child.stdout?.on('data', (d: Buffer) => {
      if (/listening/i.test(d.toString())) {
        clearTimeout(timer);
        ok();
      }
    });
    // What extra flags make the gateway print (a GC trace, say) goes to this script's stderr.
    if (values['gateway-flags'] !== '') child.stdout?.pipe(process.stderr);
    child.once('exit', (code) => fail(new Error(`gateway exited with ${code}`)));
  });
  return child;
}

/** CPU seconds (user + system) a process used so far, from /proc (clock ticks of 10 ms). */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface PhaseResult extends LoadResult {
  /** Gateway CPU per call in µs (NaN for the direct phases). */
  readonly gatewayCpuUs: number;
  /** Redis server CPU per call in µs (NaN when Redis is not on this machine). */
  readonly redisCpuUs: number;
  /** Share of the machine's CPU time stolen by the hypervisor during the phase. */
  readonly stealShare: number;
}

/** All the CPU one call cost on this machine: the client, the gateway (if any) and Redis. */
function cpuPerCall(p: PhaseResult): number {
  return p.clientCpuUs + (Number.isNaN(p.gatewayCpuUs) ? 0 : p.gatewayCpuUs) + p.redisCpuUs;
}

/** The `cpu` line of /proc/stat: [steal ticks, all ticks]. */
function stealSample(): [number, number] {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').split(/\s+/).slice(1).map(Number);
  return [fields[7] ?? 0, fields.slice(0, 8).reduce((a, b) => a + b, 0)];
}

function stealShare(before: [number, number], after: [number, number]): number {
  return (after[0] - before[0]) / Math.max(1, after[1] - before[1]);
}

/** What a table row shows of a phase. */
type Row = Pick<
  PhaseResult,
  'opsPerSecond' | 'p50Ms' | 'p99Ms' | 'errors' | 'clientCpuUs' | 'gatewayCpuUs' | 'redisCpuUs' | 'stealShare'
>;

function row(name: string, r: Row): string {
  const cells = [
    name.padEnd(24),
    r.opsPerSecond.toFixed(0).padStart(9),
    r.p50Ms.toFixed(2).padStart(7),
    r.p99Ms.toFixed(2).padStart(7),
    String(r.errors).padStart(6),
    r.clientCpuUs.toFixed(0).padStart(9),
    (Number.isNaN(r.gatewayCpuUs) ? '—' : r.gatewayCpuUs.toFixed(0)).padStart(10),
    (Number.isNaN(r.redisCpuUs) ? '—' : r.redisCpuUs.toFixed(0)).padStart(8),
    `${(r.stealShare * 100).toFixed(0)} %`.padStart(5),
  ];
  return `| ${cells.join(' | ')} |`;
}

async function main(): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'gatehouse-kv-bench-'));
  // The machine is shared: the 1-minute load average says how much the numbers are worth.
  const loadBefore = loadavg()[0] ?? Number.NaN;
  const idp = await startIdp();
  const kvPort = await closedPort();
  const gateway = await startGateway(home, kvPort, idp.url);
  const redis = new Redis(values.redis);
  try {
    // Redis's own CPU per call, when the server runs on this machine (its pid from INFO).
    const info = await redis.info('server');
    const pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
    const redisPid = existsSync(`/proc/${pid}/stat`) ? pid : undefined;
    const token = await idp.sign({ roles: ['operator:bench'], exp: Math.floor(Date.now() / 1000) + 3600 });
    const url = `https://127.0.0.1:${kvPort}`;
    const ca = readFileSync(join(home, 'tls', 'ca.crt'), 'utf8');
    const lean = createBenchGrpcClient({ url, ca, token, service: 'gatehouse.kv.v1.KvService' });
    const connect = createKvClient({ url, ca, token, timeoutMs: 10_000 });
    const key = (i: number) => `k${i % KEYS}`;
    const checkVersion = (r: { version: bigint }) => {
      if (r.version <= 0n) throw new Error('Set answered without a version');
    };
    const checkFound = (r: { found: boolean; entry?: { value: Uint8Array } | undefined }) => {
      if (!r.found || r.entry?.value.length !== VALUE.length) throw new Error('Get did not find the value');
    };
    const gwSet =
      values.client === 'lean'
        ? (i: number) =>
            lean
              .call('Set', SetRequestSchema, SetResponseSchema, {
                namespace: 'bench',
                key: key(i),
                value: VALUE,
              })
              .then(checkVersion)
        : (i: number) => connect.set({ namespace: 'bench', key: key(i), value: VALUE }).then(checkVersion);
    const gwGet =
      values.client === 'lean'
        ? (i: number) =>
            lean
              .call('Get', GetRequestSchema, GetResponseSchema, { namespace: 'bench', key: key(i) })
              .then(checkFound)
        : (i: number) => connect.get({ namespace: 'bench', key: key(i) }).then(checkFound);
    // The product's batching (ADR 0160) over the same transport: calls of one event-loop turn
    // share one BatchGet or BatchSet.
    const calls: KvBatchCalls =
      values.client === 'lean'
        ? {
            get: (r) => lean.call('Get', GetRequestSchema, GetResponseSchema, r),
            set: (r) => lean.call('Set', SetRequestSchema, SetResponseSchema, r),
            batchGet: (r) => lean.call('BatchGet', BatchGetRequestSchema, BatchGetResponseSchema, r),
            batchSet: (r) => lean.call('BatchSet', BatchSetRequestSchema, BatchSetResponseSchema, r),
          }
        : connect;
    const batcher = createKvBatcher(calls, { maxItems: Number(values['batch-items']) });
    const gwBatchedSet = (i: number) =>
      batcher.set({ namespace: 'bench', key: key(i), value: VALUE }).then(checkVersion);
    const gwBatchedGet = (i: number) => batcher.get({ namespace: 'bench', key: key(i) }).then(checkFound);
    // No pipelining: every caller has its own connection with one command in flight.
    const pool = Array.from({ length: CONCURRENCY }, () => new Redis(values.redis));
    const pooled = (worker: number) => pool[worker] as Redis;
    const opts = { concurrency: CONCURRENCY, seconds: SECONDS, maxOps: MAX_OPS };
    const warm = { ...opts, seconds: 1 };
    // Warm-up: JIT, connections, the JWKS fetch and the keys both reads will find.
    await runLoad((i) => redis.set(`gatehouse-bench:direct:${key(i)}`, VALUE), warm);
    await runLoad((i, w) => pooled(w).get(`gatehouse-bench:direct:${key(i)}`), warm);
    await runLoad(gwSet, warm);
    const only = values.phases.split(',').filter((w) => w !== '');
    const phases: [string, (i: number, worker: number) => Promise<unknown>][] = [
      ['direct ioredis SET', (i) => redis.set(`gatehouse-bench:direct:${key(i)}`, VALUE)],
      ['gateway batched Set', gwBatchedSet],
      ['gateway gRPC Set', gwSet],
      ['unpipelined ioredis SET', (i, w) => pooled(w).set(`gatehouse-bench:direct:${key(i)}`, VALUE)],
      ['direct ioredis GET', (i) => redis.getBuffer(`gatehouse-bench:direct:${key(i)}`)],
      ['gateway batched Get', gwBatchedGet],
      ['gateway gRPC Get', gwGet],
      ['unpipelined ioredis GET', (i, w) => pooled(w).getBuffer(`gatehouse-bench:direct:${key(i)}`)],
    ];
    const selected = phases.filter(([name]) => only.length === 0 || only.some((w) => name.includes(w)));
    // Each round runs every phase once, each gateway phase right after its direct baseline, and
    // a ratio is taken within a round: on a shared VM whose neighbours come and go, phases
    // minutes apart can run on very different machines.
    const rounds: Record<string, PhaseResult>[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      const results: Record<string, PhaseResult> = {};
      for (const [name, op] of selected) {
        const cpu = cpuSeconds(gateway.pid);
        const redisCpu = cpuSeconds(redisPid);
        const steal = stealSample();
        const r = await runLoad(op, opts);
        results[name] = {
          ...r,
          gatewayCpuUs: name.startsWith('gateway')
            ? ((cpuSeconds(gateway.pid) - cpu) / r.ops) * 1e6
            : Number.NaN,
          redisCpuUs: ((cpuSeconds(redisPid) - redisCpu) / r.ops) * 1e6,
          stealShare: stealShare(steal, stealSample()),
        };
      }
      rounds.push(results);
    }
    const rss = peakRssMiB(gateway.pid);
    const loadAfter = loadavg()[0] ?? Number.NaN;
    console.log(
      `\nkv benchmark: ${ROUNDS} rounds of ${SECONDS}s per phase, concurrency ${CONCURRENCY}, 1 KiB values, ${KEYS} keys, audit ${values.audit}, ${values.client} gRPC client, batches of at most ${values['batch-items']}\n`,
    );
    console.log(
      'medians over the rounds (errors: the sum); steal: share of the CPU time the hypervisor took\n',
    );
    console.log(
      '| phase                    |     ops/s |  p50 ms |  p99 ms | errors | client µs | gateway µs | redis µs | steal |',
    );
    console.log(
      '|--------------------------|-----------|---------|---------|--------|-----------|------------|----------|-------|',
    );
    for (const [name] of selected) {
      const all = rounds.map((r) => r[name] as PhaseResult);
      const m = (f: (p: PhaseResult) => number) => median(all.map(f));
      console.log(
        row(name, {
          opsPerSecond: m((p) => p.opsPerSecond),
          p50Ms: m((p) => p.p50Ms),
          p99Ms: m((p) => p.p99Ms),
          clientCpuUs: m((p) => p.clientCpuUs),
          errors: all.reduce((n, p) => n + p.errors, 0),
          gatewayCpuUs: m((p) => p.gatewayCpuUs),
          redisCpuUs: m((p) => p.redisCpuUs),
          stealShare: m((p) => p.stealShare),
        }),
      );
      const failed = all.find((p) => p.firstError !== undefined);
      if (failed !== undefined) console.log(`  first error: ${failed.firstError}`);
    }
    const ratios: Record<string, number[]> = {};
    for (const [gw, direct] of [
      ['gateway gRPC Set', 'direct ioredis SET'],
      ['gateway gRPC Get', 'direct ioredis GET'],
      ['gateway batched Set', 'direct ioredis SET'],
      ['gateway batched Get', 'direct ioredis GET'],
    ] as const) {
      const per = rounds.map(
        (r) => (r[gw]?.opsPerSecond ?? Number.NaN) / (r[direct]?.opsPerSecond ?? Number.NaN),
      );
      if (per.some((x) => Number.isNaN(x))) continue;
      ratios[`${gw} / ${direct}`] = per;
      // What the ratio would be if the machine were only CPU-bound: all the CPU a direct call
      // costs over all a gateway call costs. Waits do not enter it; heavy steal still inflates
      // every process's CPU per call (see the steal column).
      const cpu = median(
        rounds.map((r) => cpuPerCall(r[direct] as PhaseResult) / cpuPerCall(r[gw] as PhaseResult)),
      );
      console.log(
        `${`${gw} / ${direct}:`.padEnd(44)} ${median(per).toFixed(2)} (rounds ${per.map((x) => x.toFixed(2)).join(', ')}); CPU per call direct/gateway ${cpu.toFixed(2)}`,
      );
    }
    console.log(`gateway peak RSS: ${rss.toFixed(0)} MiB`);
    console.log(`load average (1 min) before/after: ${loadBefore.toFixed(1)}/${loadAfter.toFixed(1)}`);
    console.log(JSON.stringify({ rounds, ratios, peakRssMiB: rss, loadAverage: [loadBefore, loadAfter] }));
    if (lean.goaways.length > 0)
      console.log(`GOAWAY frames received (code/last stream): ${lean.goaways.join(', ')}`);
    lean.close();
    for (const c of pool) c.disconnect();
  } finally {
    redis.disconnect();
    gateway.kill('SIGTERM');
    await new Promise((r) => gateway.once('exit', r));
    await idp.close();
    rmSync(home, { recursive: true, force: true });
  }
}

await main();
