/**
 * Edge benchmark against HAProxy (Debian package) on the same machine in the same run:
 *   1. L4 bulk throughput through SNI passthrough (curl downloading a large body over TLS),
 *   2. new TLS connections per second through L4 (handshake loop, p50/p99),
 *   3. L7 HTTP/2 requests per second with h2load (TLS terminated, h2c backend, p50/p99).
 * Prints one table with ratios and the peak RSS of each proxy. Run: `node bench/edge.ts`.
 * Knobs: EDGE_BENCH_SECONDS (default 8), EDGE_BENCH_BULK_MIB (default 512), EDGE_BENCH_ROUNDS (3),
 * EDGE_BENCH_SCENARIOS (default `bulk,conn,l7,ceiling`; `ceiling` is a bare node:http2 proxy), EDGE_BENCH_CPUS (default `1`), EDGE_BENCH_NODE_FLAGS
 * (default: the flags of `npm start`), EDGE_BENCH_HTTP2_RELAY (`0`: the L7 listener uses
 * node:http2 streams instead of the HTTP/2 frame relay of ADR 0150, the product's default).
 * The L7 listener allows 1024 requests in flight per client (`maxStreamsPerClient`, default
 * 256): h2load is one client address with 32 × 16 streams.
 *
 * Fairness: both proxies are allowed the same cores. EDGE_BENCH_CPUS is a CPU list for `taskset`
 * that both the edge process and HAProxy run under, and HAProxy gets `nbthread` = the number of
 * CPUs in it (with `none`, nothing is pinned and HAProxy keeps its default, one thread per core).
 * The edge runs with the V8 flags of `npm start` (ADR 0100), as deployed.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { processEnvironment } from '#core/config';
import { startFlags } from '#testing/start-gateway';
import { createTestPki } from '../test/integration/edge/certs.ts';
import { freePort, HAPROXY_HEAD, startHaproxy } from '../test/integration/edge/haproxy.ts';

const run = promisify(execFile);
const env = processEnvironment();
const SECONDS = Number(env['EDGE_BENCH_SECONDS'] ?? 8);
const BULK_MIB = Number(env['EDGE_BENCH_BULK_MIB'] ?? 512);
const NODE = process.execPath;
const HERE = import.meta.dirname;
const SCENARIOS = new Set((env['EDGE_BENCH_SCENARIOS'] ?? 'bulk,conn,l7,ceiling').split(','));
/** `1` turns the L7 listener's HTTP/2 frame relay on (ADR 0150; off by default in the product). */
const RELAY = env['EDGE_BENCH_HTTP2_RELAY'] !== '0';
const CPUS = env['EDGE_BENCH_CPUS'] ?? '1';

/** The number of CPUs in a taskset list such as `1`, `0,1` or `0-3`. */
function cpuCount(list: string): number {
  return list
    .split(',')
    .map((part) => part.split('-').map(Number))
    .reduce((n, [from = 0, to = from]) => n + (to - from + 1), 0);
}
/** The edge's Node flags: those of `npm start` unless EDGE_BENCH_NODE_FLAGS says otherwise. */
const EDGE_FLAGS =
  env['EDGE_BENCH_NODE_FLAGS'] === undefined
    ? startFlags()
    : env['EDGE_BENCH_NODE_FLAGS'].split(' ').filter((f) => f !== '');
const PIN = CPUS === 'none' ? [] : ['taskset', '-c', CPUS];
const NBTHREAD = CPUS === 'none' ? undefined : cpuCount(CPUS);

interface Sample {
  readonly value: number;
  /** CPU time the proxy process spent per unit of work (see UNITS). */
  readonly cpu?: number;
  readonly p50?: number;
  readonly p99?: number;
  readonly failed?: number;
}

interface Started {
  readonly child: ChildProcess;
  readonly info: Record<string, number>;
}

/** Runs a script of bench/edge; `launch` is the command line before the script (node and flags). */
function startNode(
  script: string,
  args: readonly string[],
  launch: readonly string[] = [NODE],
): Promise<Started> {
  const [command = NODE, ...rest] = [...launch, join(HERE, 'edge', script), ...args];
  const child = spawn(command, rest, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /READY (\{.*\})/.exec(out);
      if (m?.[1] !== undefined) resolve({ child, info: JSON.parse(m[1]) as Record<string, number> });
    });
    child.once('exit', (code) => reject(new Error(`${script} exited with ${String(code)}`)));
  });
}

/** Peak resident set (VmHWM) of a process in MiB. */
async function peakRssMiB(pid: number | undefined): Promise<number> {
  const status = await readFile(`/proc/${pid ?? 0}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

const TICKS = Number((await run('getconf', ['CLK_TCK'])).stdout.trim());

/**
 * CPU seconds (user + system, all threads) a process has used. Throughput ratios on a shared
 * machine swing with whatever else runs; CPU per unit of work is what each proxy costs.
 */
async function cpuSeconds(pid: number | undefined): Promise<number> {
  const stat = await readFile(`/proc/${pid ?? 0}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of proc_pid_stat(5), counted here from field 3.
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

/** Runs `work` and adds the CPU the proxy `pid` spent per unit of it. */
async function measured<T extends { units: number }>(
  pid: number | undefined,
  work: () => Promise<T>,
): Promise<T & { cpu: number }> {
  const before = await cpuSeconds(pid);
  const result = await work();
  const used = (await cpuSeconds(pid)) - before;
  return { ...result, cpu: result.units === 0 ? 0 : used / result.units };
}

async function bulk(port: number, caFile: string): Promise<{ value: number; units: number }> {
  const speeds: number[] = [];
  for (let i = 0; i < 3; i++) {
    const { stdout } = await run('curl', [
      '-s',
      '-o',
      '/dev/null',
      '--cacert',
      caFile,
      '-w',
      '%{speed_download}',
      '--resolve',
      `bulk.bench.test:${port}:127.0.0.1`,
      `https://bulk.bench.test:${port}/`,
    ]);
    speeds.push(Number(stdout) / (1024 * 1024));
  }
  // Units: GiB relayed.
  return { value: speeds.toSorted((a, b) => a - b)[1] ?? 0, units: (3 * BULK_MIB) / 1024 };
}

async function connects(port: number) {
  const { stdout } = await run(NODE, [
    join(HERE, 'edge', 'connect-load.ts'),
    String(port),
    'small.bench.test',
    String(SECONDS),
    '16',
  ]);
  const r = JSON.parse(stdout) as { connections: number; perSecond: number; p50: number; p99: number };
  // Units: thousands of connections.
  return { ...r, units: r.connections / 1000 };
}

async function h2load(port: number, dir: string, label: string) {
  const log = join(dir, `h2load-${label}.log`);
  const { stdout } = await run(
    'h2load',
    [
      '-D',
      String(SECONDS),
      '-c',
      '32',
      '-m',
      '16',
      '-t',
      '1',
      '--log-file',
      log,
      // The URL host is the SNI and :authority; --connect-to sends the connections to loopback.
      `https://api.bench.test:${port}/`,
      '--connect-to',
      `127.0.0.1:${port}`,
    ],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  const rps = Number(/finished in [^,]+, ([\d.]+) req\/s/.exec(stdout)?.[1] ?? 0);
  // A fast 502 is not a served request: answers other than 2xx count as failed too.
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout);
  const failed =
    Number(/(\d+) failed/.exec(stdout)?.[1] ?? 0) +
    Number(codes?.[2] ?? 0) +
    Number(codes?.[3] ?? 0) +
    Number(codes?.[4] ?? 0);
  const times = (await readFile(log, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => Number(l.split('\t')[2]) / 1000)
    .filter((n) => Number.isFinite(n))
    .sort((a, b) => a - b);
  const pct = (p: number) => times[Math.min(times.length - 1, Math.floor((times.length * p) / 100))] ?? 0;
  // Units: thousands of requests.
  const done = Number(/requests: \d+ total, \d+ started, (\d+) done/.exec(stdout)?.[1] ?? 0);
  return { rps, failed, p50: pct(50), p99: pct(99), units: done / 1000 };
}

const pki = await createTestPki();
const leaf = await pki.issue('bench', ['*.bench.test']);
const backend = await startNode('backend-process.ts', [leaf.certFile, leaf.keyFile, String(BULK_MIB)]);
const b = backend.info;
const edge = await startNode(
  'edge-process.ts',
  [
    JSON.stringify({
      listeners: [
        { id: 'l4', host: '127.0.0.1', port: 0, idleTimeout: '60s' },
        { id: 'l7', host: '127.0.0.1', port: 0, http2Relay: RELAY, maxStreamsPerClient: 1024 },
      ],
      routes: [
        { id: 'bulk', listener: 'l4', host: 'bulk.bench.test', backend: `127.0.0.1:${b['bulk']}` },
        { id: 'small', listener: 'l4', host: 'small.bench.test', backend: `127.0.0.1:${b['small']}` },
        {
          id: 'api',
          listener: 'l7',
          host: 'api.bench.test',
          mode: 'l7',
          backend: `127.0.0.1:${b['h2c']}`,
          backendProtocol: 'h2c',
          certFile: leaf.certFile,
          keyFile: leaf.keyFile,
        },
      ],
    }),
  ],
  [...PIN, NODE, ...EDGE_FLAGS],
);
// The ceiling row: a bare node:http2 proxy under the same pinning and flags as the edge.
const ceiling = SCENARIOS.has('ceiling')
  ? await startNode(
      'h2-ceiling.ts',
      [leaf.certFile, leaf.keyFile, String(b['h2c'])],
      [...PIN, NODE, ...EDGE_FLAGS],
    )
  : undefined;
const [hl4, hl7] = [await freePort(), await freePort()];
const haproxy = await startHaproxy(
  async (dir) => {
    const bundle = join(dir, 'bench.pem');
    await writeFile(bundle, Buffer.concat([leaf.cert, leaf.key]));
    return [
      HAPROXY_HEAD.replace('global\n', `global\n${NBTHREAD === undefined ? '' : `  nbthread ${NBTHREAD}\n`}`),
      'frontend l4',
      '  mode tcp',
      `  bind 127.0.0.1:${hl4}`,
      '  tcp-request inspect-delay 5s',
      '  tcp-request content accept if { req_ssl_hello_type 1 }',
      '  use_backend bulk if { req_ssl_sni -i bulk.bench.test }',
      '  use_backend small if { req_ssl_sni -i small.bench.test }',
      'backend bulk',
      '  mode tcp',
      `  server b 127.0.0.1:${b['bulk']}`,
      'backend small',
      '  mode tcp',
      `  server s 127.0.0.1:${b['small']}`,
      'frontend l7',
      '  mode http',
      `  bind 127.0.0.1:${hl7} ssl crt ${bundle} alpn h2,http/1.1`,
      '  default_backend api',
      'backend api',
      '  mode http',
      `  server a 127.0.0.1:${b['h2c']} proto h2`,
      '',
    ].join('\n');
  },
  [hl4, hl7],
  PIN,
);

try {
  const e = edge.info;
  const loadStart = loadavg()
    .map((n) => n.toFixed(2))
    .join(' ');
  // Rounds alternate edge and HAProxy so that load from other processes on the shared machine
  // hits both alike; each figure is the median over the rounds.
  const rounds = Number(env['EDGE_BENCH_ROUNDS'] ?? 3);
  const samples = { bulk: [[], []], conn: [[], []], l7: [[], []] } as Record<string, [Sample[], Sample[]]>;
  const ceilingSamples: Sample[] = [];
  const targets = [
    { l4: e['l4'] ?? 0, l7: e['l7'] ?? 0, label: 'edge' },
    { l4: hl4, l7: hl7, label: 'haproxy' },
  ];
  for (let round = 0; round < rounds; round++) {
    for (const t of round % 2 === 0 ? targets : targets.toReversed()) {
      const side = t.label === 'edge' ? 0 : 1;
      const pid = side === 0 ? edge.child.pid : haproxy.child.pid;
      if (SCENARIOS.has('bulk')) {
        const r = await measured(pid, () => bulk(t.l4, pki.caFile));
        samples['bulk']?.[side].push({ value: r.value, cpu: r.cpu });
      }
      if (SCENARIOS.has('conn')) {
        const c = await measured(pid, () => connects(t.l4));
        samples['conn']?.[side].push({ value: c.perSecond, p50: c.p50, p99: c.p99, cpu: c.cpu });
      }
      if (SCENARIOS.has('l7')) {
        const h = await measured(pid, () => h2load(t.l7, pki.dir, `${t.label}-${round}`));
        samples['l7']?.[side].push({ value: h.rps, p50: h.p50, p99: h.p99, failed: h.failed, cpu: h.cpu });
      }
      if (ceiling !== undefined && side === 0) {
        const h = await measured(ceiling.child.pid, () =>
          h2load(ceiling.info['l7'] ?? 0, pki.dir, `ceiling-${round}`),
        );
        ceilingSamples.push({ value: h.rps, p50: h.p50, p99: h.p99, failed: h.failed, cpu: h.cpu });
      }
    }
  }
  const med = (list: Sample[] | undefined): Sample =>
    (list ?? []).toSorted((a, b) => a.value - b.value)[Math.floor((list?.length ?? 0) / 2)] ?? { value: 0 };
  const results = {
    bulk: { edge: med(samples['bulk']?.[0]).value, haproxy: med(samples['bulk']?.[1]).value },
    connects: {
      edge: { ...med(samples['conn']?.[0]), perSecond: med(samples['conn']?.[0]).value },
      haproxy: { ...med(samples['conn']?.[1]), perSecond: med(samples['conn']?.[1]).value },
    },
    l7: {
      edge: { ...med(samples['l7']?.[0]), rps: med(samples['l7']?.[0]).value },
      haproxy: { ...med(samples['l7']?.[1]), rps: med(samples['l7']?.[1]).value },
    },
    rss: { edge: await peakRssMiB(edge.child.pid), haproxy: await peakRssMiB(haproxy.child.pid) },
    rounds,
    // Every round's figure, edge then HAProxy, so the spread behind each median is visible.
    samples: { ...samples, ceiling: ceilingSamples },
  };
  const ratio = (a: number, c: number) => (c === 0 ? 0 : a / c).toFixed(2);
  const f = (n: number | undefined) => (n ?? 0).toFixed(1);
  const cores =
    NBTHREAD === undefined
      ? 'not pinned, HAProxy default nbthread'
      : `both pinned to CPU ${CPUS}, HAProxy nbthread ${NBTHREAD}`;
  const flags = `${EDGE_FLAGS.length === 0 ? 'no Node flags' : `edge flags ${EDGE_FLAGS.join(' ')}`}, L7 ${
    RELAY ? 'HTTP/2 frame relay' : 'node:http2'
  }`;
  console.log(
    `\nEdge vs HAProxy ${(await run('haproxy', ['-v'])).stdout.split('\n')[0] ?? ''} (${SECONDS}s per run, median of ${rounds} alternating rounds, ${cores}, ${flags}; load average ${loadStart} at the start, ${loadavg()
      .map((n) => n.toFixed(2))
      .join(' ')} at the end)`,
  );
  console.log('| scenario | Gatehouse edge | HAProxy | ratio | target |');
  console.log('|---|---|---|---|---|');
  console.log(
    `| L4 bulk throughput (MiB/s, ${BULK_MIB} MiB download, middle of 3) | ${f(results.bulk.edge)} | ${f(results.bulk.haproxy)} | ${ratio(results.bulk.edge, results.bulk.haproxy)} | >= 1.0 |`,
  );
  const c = results.connects;
  console.log(
    `| L4 new TLS connections/s (16 loops) | ${f(c.edge.perSecond)} (p50 ${f(c.edge.p50)} ms, p99 ${f(c.edge.p99)} ms) | ${f(c.haproxy.perSecond)} (p50 ${f(c.haproxy.p50)} ms, p99 ${f(c.haproxy.p99)} ms) | ${ratio(c.edge.perSecond, c.haproxy.perSecond)} | >= 0.7 |`,
  );
  const l = results.l7;
  console.log(
    `| L7 HTTP/2 req/s (h2load -c 32 -m 16) | ${f(l.edge.rps)} (p50 ${f(l.edge.p50)} ms, p99 ${f(l.edge.p99)} ms, ${l.edge.failed} failed) | ${f(l.haproxy.rps)} (p50 ${f(l.haproxy.p50)} ms, p99 ${f(l.haproxy.p99)} ms, ${l.haproxy.failed} failed) | ${ratio(l.edge.rps, l.haproxy.rps)} | >= 0.7 |`,
  );
  if (ceiling !== undefined) {
    const m = med(ceilingSamples);
    console.log(
      `| L7 bare node:http2 proxy, same pinning (ceiling, bench/edge/h2-ceiling.ts) | ${f(m.value)} (p50 ${f(m.p50)} ms, p99 ${f(m.p99)} ms, ${m.failed} failed) | ${f(l.haproxy.rps)} | ${ratio(m.value, l.haproxy.rps)} | |`,
    );
  }
  console.log(`| peak RSS (MiB) | ${results.rss.edge} | ${results.rss.haproxy} | | |`);
  // CPU per unit of work, the median of the rounds; HAProxy / edge is the edge's efficiency.
  const cpu = (list: Sample[] | undefined) =>
    ((list ?? []).map((x) => x.cpu ?? 0).toSorted((a, b) => a - b)[Math.floor((list?.length ?? 0) / 2)] ??
      0) * 1000;
  console.log(
    '\n| CPU of the proxy process (all threads), per unit | Gatehouse edge | HAProxy | HAProxy / edge |',
  );
  console.log('|---|---|---|---|');
  const cpuRow = (label: string, key: string) => {
    const [edgeCpu, haCpu] = [cpu(samples[key]?.[0]), cpu(samples[key]?.[1])];
    console.log(`| ${label} | ${f(edgeCpu)} | ${f(haCpu)} | ${ratio(haCpu, edgeCpu)} |`);
  };
  if (SCENARIOS.has('bulk')) cpuRow('L4 bulk, CPU ms per GiB', 'bulk');
  if (SCENARIOS.has('conn')) cpuRow('L4 connections, CPU ms per 1000', 'conn');
  if (SCENARIOS.has('l7')) {
    cpuRow('L7 requests, CPU ms per 1000', 'l7');
    if (ceiling !== undefined) {
      const [ceilCpu, haCpu] = [cpu(ceilingSamples), cpu(samples['l7']?.[1])];
      console.log(
        `| L7 bare node:http2 proxy (ceiling), CPU ms per 1000 | ${f(ceilCpu)} | ${f(haCpu)} | ${ratio(haCpu, ceilCpu)} |`,
      );
    }
  }
  console.log(`\n${JSON.stringify(results)}`);
} finally {
  edge.child.kill('SIGTERM');
  ceiling?.child.kill('SIGTERM');
  backend.child.kill('SIGTERM');
  await haproxy[Symbol.asyncDispose]();
  await pki[Symbol.asyncDispose]();
}
