/**
 * Registry door, part 2: Go `@v/list` and `.info`, and an OCI manifest by tag, served from the
 * door's cache, compared with the same uplink served directly (the fixture GOPROXY, and
 * docker-registry with a token fetched once). Gatehouse and the fixture GOPROXY each run in a
 * process of their own (this script re-executed with `--serve` or `--serve-go`), apart from the
 * load loop, which is bounded by count and time, loopback only. Each case runs `--rounds` times,
 * direct and through the door alternately, and reports medians (one busy moment of a shared
 * machine then skews one round, not the result).
 *
 *   node_modules/.bin/node bench/registry-ecosystems.ts [--connections 16] [--duration 10] [--rounds 3]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { startGoUpstream } from '../test/integration/registry/go-fixture.ts';
import { startGateway } from '../test/integration/registry/harness.ts';
import { PASSWORD, startOciUpstream, USER } from '../test/integration/registry/oci-fixture.ts';

const { values } = parseArgs({
  options: {
    serve: { type: 'string' },
    'serve-go': { type: 'boolean', default: false },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '16' },
    duration: { type: 'string', default: '10' },
    'max-requests': { type: 'string', default: '200000' },
  },
});

const MODULE = 'example.test/bench';
const DAY = 86_400_000;

const VERSIONS = Array.from({ length: 30 }, (_, i) => ({
  version: `v1.${i}.0`,
  time: new Date(Date.now() - (60 - i) * DAY).toISOString(),
  files: { 'bench.go': `package bench\n\nconst V = ${i}\n` },
}));

/** Runs this script again in a child process and resolves with the URL it prints. */
async function child(args: string[]): Promise<{ url: string; process: ReturnType<typeof spawn> }> {
  const proc = spawn(process.execPath, [import.meta.filename, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let text = '';
    proc.stdout?.on('data', (c: Buffer) => {
      text += c.toString();
      const m = /LISTENING (\S+)/.exec(text);
      if (m !== null) resolve(m[1] as string);
    });
    proc.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}`)));
  });
  return { url, process: proc };
}

async function serveGo(): Promise<void> {
  const go = await startGoUpstream({ [MODULE]: VERSIONS });
  process.stdout.write(`LISTENING ${go.url}\n`);
  process.once(
    'SIGTERM',
    () => void Promise.resolve(go[Symbol.asyncDispose]()).finally(() => process.exit(0)),
  );
}

async function serve(config: string): Promise<void> {
  const gw = await startGateway({
    config: JSON.parse(config) as Record<string, unknown>,
    cacheBytes: 256 << 20,
  });
  process.stdout.write(`LISTENING ${gw.url}\n`);
  process.once(
    'SIGTERM',
    () => void Promise.resolve(gw[Symbol.asyncDispose]()).finally(() => process.exit(0)),
  );
}

interface Result {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
}

/** Closed-loop load: `connections` workers, until the duration or the request budget ends. */
async function load(url: string, headers: Record<string, string>): Promise<Result> {
  const u = new URL(url);
  const connections = Number(values.connections);
  const pool = new Pool(u.origin, { connections });
  const deadline = performance.now() + Number(values.duration) * 1000;
  let budget = Number(values['max-requests']);
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < deadline && budget-- > 0) {
        const t = performance.now();
        const res = await pool.request({ path: `${u.pathname}${u.search}`, method: 'GET', headers });
        await res.body.dump();
        if (res.statusCode !== 200) errors++;
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  await pool.close();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))] ?? 0;
  return { rps: latencies.length / seconds, p50: at(0.5), p99: at(0.99), errors };
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'bench-registry-eco-'));
  const go = await child(['--serve-go']);
  const oci = await startOciUpstream(work);
  await oci.push('bench/app', 'v1', {
    created: new Date(Date.now() - 30 * DAY).toISOString(),
    content: 'bench\n',
  });
  const config = {
    npm: { enabled: false },
    go: { uplinks: [{ name: 'goproxy', url: `${go.url}/` }] },
    oci: { uplinks: [{ name: 'hub', url: oci.url, username: USER, password: PASSWORD }] },
    cache: { metadataTtl: '1h' },
    policy: { rules: [{ id: 'min-age', type: 'minimumAge', minimumAge: { age: '2d' } }] },
  };
  const gatehouse = await child(['--serve', JSON.stringify(config)]);
  const door = gatehouse.url;
  // A token for direct requests, fetched once as a client would reuse it.
  const challenge =
    (await fetch(`${oci.url}/v2/bench/app/manifests/v1`)).headers.get('www-authenticate') ?? '';
  const realm = /realm="([^"]+)"/.exec(challenge)?.[1] ?? '';
  const service = /service="([^"]+)"/.exec(challenge)?.[1] ?? '';
  const tokenRes = await fetch(`${realm}?service=${service}&scope=repository:bench/app:pull`, {
    headers: { authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` },
  });
  const { token } = (await tokenRes.json()) as { token: string };
  const accept = { accept: 'application/vnd.oci.image.manifest.v1+json' };
  const cases = [
    ['Go `@v/list`', `${go.url}/${MODULE}/@v/list`, `${door}/go/${MODULE}/@v/list`, {}, {}],
    ['Go `.info`', `${go.url}/${MODULE}/@v/v1.3.0.info`, `${door}/go/${MODULE}/@v/v1.3.0.info`, {}, {}],
    [
      'OCI manifest by tag',
      `${oci.url}/v2/bench/app/manifests/v1`,
      `${door}/v2/hub/bench/app/manifests/v1`,
      { ...accept, authorization: `Bearer ${token}` },
      accept,
    ],
  ] as const;
  const rows: string[] = [];
  const rounds = Number(values.rounds);
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0;
  const mid = (rs: Result[]): Result => ({
    rps: median(rs.map((r) => r.rps)),
    p50: median(rs.map((r) => r.p50)),
    p99: median(rs.map((r) => r.p99)),
    errors: rs.reduce((n, r) => n + r.errors, 0),
  });
  for (const [label, direct, through, directHeaders, doorHeaders] of cases) {
    await fetch(through, { headers: doorHeaders }).then((r) => r.arrayBuffer());
    const d: Result[] = [];
    const g: Result[] = [];
    const ratios: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const di = await load(direct, directHeaders);
      const gi = await load(through, doorHeaders);
      d.push(di);
      g.push(gi);
      ratios.push(gi.rps / di.rps);
    }
    const row = (who: string, r: Result) =>
      `| ${label} | ${who} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.errors} |`;
    rows.push(row('upstream directly', mid(d)), row('Gatehouse (cache hit)', mid(g)));
    rows.push(
      `| ${label} | **ratio** | **${median(ratios).toFixed(2)}×** (rounds ${ratios.map((x) => x.toFixed(2)).join(', ')}) | | | |`,
    );
  }
  process.stdout.write(
    `connections ${values.connections}, duration ${values.duration}s per run, ${rounds} rounds (medians), load average ${loadavg()[0]?.toFixed(1)} on ${availableParallelism()} CPUs\n\n| request | server | req/s | p50 ms | p99 ms | errors |\n|---|---|---:|---:|---:|---:|\n${rows.join('\n')}\n`,
  );
  gatehouse.process.kill('SIGTERM');
  go.process.kill('SIGTERM');
  await oci[Symbol.asyncDispose]();
  await rm(work, { recursive: true, force: true });
}

if (values.serve !== undefined) await serve(values.serve);
else if (values['serve-go']) await serveGo();
else await main();
