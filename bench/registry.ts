/**
 * Registry door benchmark (docs/benchmarks.md, "registry"). In one run, on this machine:
 *  1. installs Verdaccio 6 and autocannon into bench/.work/ (never committed; npm override pins
 *     node-fetch to 2.7.0, without which Verdaccio 6 does not install here),
 *  2. starts one fixture upstream with a packument of more than 10 MB and a small one,
 *  3. starts Gatehouse (registry door only) and Verdaccio in front of it, each in its own process,
 *  4. warms both caches, then drives each with the same autocannon settings per packument:
 *     requests/s, p50/p99 latency, peak RSS of the server process, and the ratios,
 *  5. measures a cold fetch of the large packument through Gatehouse against the upstream's own
 *     time, on loopback and with the upstream throttled like a remote registry.
 * Run: `node_modules/.bin/node bench/registry.ts [--connections 32] [--duration 10] [--only cold]`
 * (`--only cold` skips Verdaccio and the load runs and measures the cold fetch alone).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { startUpstream } from './registry/upstream.ts';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '32' },
    'big-connections': { type: 'string', default: '4' },
    duration: { type: 'string', default: '10' },
    'cold-runs': { type: 'string', default: '5' },
    only: { type: 'string', default: 'all' },
  },
});
if (values.only !== 'all' && values.only !== 'cold') throw new TypeError('--only takes "all" or "cold"');
const COLD_ONLY = values.only === 'cold';
const CONNECTIONS = Number(values.connections);
const BIG_CONNECTIONS = Number(values['big-connections']);
const DURATION = Number(values.duration);
const COLD_RUNS = Number(values['cold-runs']);
const ROOT = resolve(import.meta.dirname, '..');
const WORK = join(ROOT, 'bench', '.work');
const NODE = join(ROOT, 'node_modules', '.bin', 'node');

function installTools(): void {
  if (
    existsSync(join(WORK, 'node_modules', 'verdaccio')) &&
    existsSync(join(WORK, 'node_modules', 'autocannon'))
  )
    return;
  mkdirSync(WORK, { recursive: true });
  writeFileSync(
    join(WORK, 'package.json'),
    JSON.stringify(
      {
        private: true,
        dependencies: { verdaccio: '^6', autocannon: '^8' },
        overrides: { 'node-fetch': '2.7.0' },
      },
      null,
      2,
    ),
  );
  process.stderr.write('installing verdaccio 6 and autocannon into bench/.work …\n');
  execFileSync(
    'flock',
    ['/tmp/gatehouse-npm.lock', 'npm', 'install', '--no-audit', '--no-fund', '--prefix', WORK],
    { stdio: 'inherit' },
  );
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

function peakRss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

async function waitFor(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    try {
      const r = await request(url);
      await r.body.dump();
      if (r.statusCode < 500) return;
    } catch {
      // Not listening yet.
    }
    await delay(200);
  }
  throw new Error(`${url} did not come up`);
}

async function startGatehouse(
  upstream: string,
): Promise<{ child: ChildProcess; url: string; token: string }> {
  const child = spawn(NODE, [join(ROOT, 'bench', 'registry', 'gatehouse.ts'), upstream], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolveLine, reject) => {
    let text = '';
    child.stdout?.on('data', (c: Buffer) => {
      text += c.toString();
      const m = /LISTENING (\S+) (\S+)/.exec(text);
      if (m !== null) resolveLine(m[0]);
    });
    child.once('exit', (code) => reject(new Error(`gatehouse exited with ${code}`)));
  });
  const [, url, token] = line.split(' ') as [string, string, string];
  return { child, url, token };
}

async function startVerdaccio(upstream: string): Promise<{ child: ChildProcess; url: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'verdaccio-bench-'));
  const port = await freePort();
  writeFileSync(
    join(dir, 'config.yaml'),
    [
      `storage: ${join(dir, 'storage')}`,
      'uplinks:',
      '  up:',
      `    url: ${upstream}/`,
      '    maxage: 1h',
      '    timeout: 60s',
      'packages:',
      "  '**':",
      '    access: $all',
      '    proxy: up',
      'max_body_size: 256mb',
      'log: { type: stdout, format: pretty, level: error }',
      '',
    ].join('\n'),
  );
  const bin = join(WORK, 'node_modules', 'verdaccio', 'bin', 'verdaccio');
  const child = spawn(NODE, [bin, '--config', join(dir, 'config.yaml'), '--listen', `127.0.0.1:${port}`], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/-/ping`, child);
  return { child, url, dir };
}

interface Load {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly rss: number;
}

async function load(url: string, pid: number, connections: number): Promise<Load> {
  const bin = join(WORK, 'node_modules', 'autocannon', 'autocannon.js');
  const out = await new Promise<string>((resolveOut, reject) => {
    const child = spawn(
      NODE,
      [
        bin,
        '-c',
        String(connections),
        '-d',
        String(DURATION),
        '-t',
        '30',
        '-j',
        '-H',
        'accept-encoding=gzip',
        '-H',
        'accept=application/json',
        url,
      ],
      {
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    let text = '';
    child.stdout.on('data', (c: Buffer) => {
      text += c.toString();
    });
    child.once('exit', (code) =>
      code === 0 ? resolveOut(text) : reject(new Error(`autocannon exited with ${code}`)),
    );
  });
  const r = JSON.parse(out) as {
    requests: { average: number };
    latency: { p50: number; p99: number };
    non2xx: number;
    errors: number;
  };
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors,
    rss: peakRss(pid),
  };
}

async function fetchAll(url: string, headers: Record<string, string> = {}): Promise<number> {
  const started = performance.now();
  const r = await request(url, {
    headers: { 'accept-encoding': 'gzip', accept: 'application/json', ...headers },
  });
  await r.body.arrayBuffer();
  if (r.statusCode !== 200) throw new Error(`${url} answered ${r.statusCode}`);
  return performance.now() - started;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

async function cold(
  upstream: string,
  gatehouse: { url: string; token: string },
): Promise<{ upstreamMs: number; gatehouseMs: number }> {
  const up: number[] = [];
  const gh: number[] = [];
  // Two unmeasured rounds first: "cold" means an empty cache, not an unwarmed JIT.
  for (let i = -2; i < COLD_RUNS; i++) {
    up.push(await fetchAll(`${upstream}/big-package`));
    const inv = await request(`${gatehouse.url}/api/registry/cache?ecosystem=npm&name=big-package`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${gatehouse.token}` },
    });
    await inv.body.dump();
    const ms = await fetchAll(`${gatehouse.url}/npm/big-package`);
    if (i >= 0) gh.push(ms);
    else up.pop();
    // The door finishes the other forms (identity, whole gzip, brotli) and the cache writes after
    // the answer; each measurement starts on an idle server, as a single cold fetch would.
    await delay(1500);
  }
  return { upstreamMs: median(up), gatehouseMs: median(gh) };
}

const fmt = (n: number, d = 0) => n.toFixed(d);
const mib = (b: number) => `${(b / 1048576).toFixed(0)} MiB`;

if (!COLD_ONLY) installTools();
const upstream = await startUpstream();
const gatehouse = await startGatehouse(upstream.url);
const verdaccio = COLD_ONLY ? undefined : await startVerdaccio(upstream.url);
try {
  const targets = [
    { name: 'gatehouse', url: `${gatehouse.url}/npm`, pid: gatehouse.child.pid as number },
    ...(verdaccio === undefined
      ? []
      : [{ name: 'verdaccio', url: verdaccio.url, pid: verdaccio.child.pid as number }]),
  ];
  const rows: { pkg: string; size: number; connections: number; results: Record<string, Load> }[] = [];
  const runs: [string, number][] = COLD_ONLY
    ? []
    : [
        ['small-package', CONNECTIONS],
        ['big-package', CONNECTIONS],
        ['big-package', BIG_CONNECTIONS],
      ];
  for (const [pkg, connections] of runs) {
    const results: Record<string, Load> = {};
    for (const t of targets) {
      await fetchAll(`${t.url}/${pkg}`);
      await fetchAll(`${t.url}/${pkg}`);
      results[t.name] = await load(`${t.url}/${pkg}`, t.pid, connections);
    }
    rows.push({ pkg, size: upstream.sizes[pkg] ?? 0, connections, results });
  }
  const loopback = await cold(upstream.url, gatehouse);
  upstream.throttle(25 * 1024 * 1024, 150);
  const remote = await cold(upstream.url, gatehouse);
  upstream.throttle(0, 0);

  const lines = [
    `duration ${DURATION}s per run, timeout 30s, accept-encoding gzip, node ${process.version}, load average ${loadavg()[0]?.toFixed(1)} on ${availableParallelism()} CPUs`,
    '',
    '| packument | connections | server | req/s | p50 ms | p99 ms | peak RSS | errors |',
    '|---|---:|---|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    for (const [name, l] of Object.entries(r.results)) {
      lines.push(
        `| ${r.pkg} (${(r.size / 1048576).toFixed(1)} MiB) | ${r.connections} | ${name} | ${fmt(l.rps, 1)} | ${fmt(l.p50, 1)} | ${fmt(l.p99, 1)} | ${mib(l.rss)} | ${l.non2xx + l.errors} |`,
      );
    }
    const g = r.results['gatehouse'] as Load;
    const v = r.results['verdaccio'] as Load;
    const ratio = v.rps > 0 ? `${fmt(g.rps / v.rps, 1)}×` : 'n/a (peer completed none)';
    lines.push(`| ${r.pkg} | ${r.connections} | **ratio** | **${ratio}** | | | | |`);
  }
  lines.push(
    '',
    `cold fetch of big-package, median of ${COLD_RUNS}: loopback upstream ${fmt(loopback.upstreamMs)} ms, through Gatehouse ${fmt(loopback.gatehouseMs)} ms (+${fmt(((loopback.gatehouseMs - loopback.upstreamMs) / loopback.upstreamMs) * 100)}%)`,
    `cold fetch with the upstream at 25 MiB/s and 150 ms to first byte: upstream ${fmt(remote.upstreamMs)} ms, through Gatehouse ${fmt(remote.gatehouseMs)} ms (+${fmt(((remote.gatehouseMs - remote.upstreamMs) / remote.upstreamMs) * 100)}%)`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  gatehouse.child.kill('SIGTERM');
  verdaccio?.child.kill('SIGTERM');
  await upstream.close();
  if (verdaccio !== undefined) rmSync(verdaccio.dir, { recursive: true, force: true });
}
