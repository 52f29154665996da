/**
 * Artifacts door benchmark (docs/benchmarks.md, "artifacts"). In one run, on this machine:
 *  1. the machine's limit on a 2 GiB generated file: `sha256sum` and `openssl enc -aes-256-ctr`
 *     (openssl enc refuses AEAD modes; CTR is GCM's keystream without GHASH),
 *  2. upload and download of the same file through the door with `curl`, and the door's peak RSS,
 *  3. 50 concurrent users mixing list, download and upload (bounded count and time), p50/p99,
 *  4. the scan time of a ~500 MB tarball with typical contents.
 * Steps 1 and 2 repeat `--runs` times (peers and door alternate, so both see the same load) and
 * the table shows medians; the door runs with the V8 flags of `npm start` (ADR 0100).
 * Run: `node_modules/.bin/node bench/artifacts.ts [--size-mib 2048] [--users 50] [--runs 3]`.
 * Generated data lives in a temporary folder and is removed at the end.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { makeTar, makeZip } from '../src/doors/artifacts/scan/fixtures.ts';
import { median } from '../src/testing/stats.ts';
import { spawnDoor } from '../test/integration/artifacts/child.ts';

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '2048' },
    users: { type: 'string', default: '50' },
    'scan-mib': { type: 'string', default: '500' },
    runs: { type: 'string', default: '3' },
  },
});
const SIZE = Number(values['size-mib']) * 1024 * 1024;
const USERS = Number(values.users);
const SCAN_SIZE = Number(values['scan-mib']) * 1024 * 1024;
const RUNS = Math.max(1, Number(values.runs));
const AUTH = { authorization: 'Bearer token-admin' };
const mibs = (bytes: number, seconds: number) => bytes / 1048576 / seconds;

function timed(cmd: string, args: readonly string[]): number {
  const start = performance.now();
  const r = spawnSync(cmd, [...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr.toString()}`);
  return (performance.now() - start) / 1000;
}

async function writeRandom(file: string, size: number): Promise<void> {
  const out = createWriteStream(file);
  const block = randomBytes(1024 * 1024);
  for (let i = 0; i * block.length < size; i += 1) {
    block.writeUInt32BE(i, 0);
    if (!out.write(Buffer.from(block))) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((r) => out.end(r));
}

function curl(args: readonly string[]): { seconds: number; out: string } {
  const start = performance.now();
  const out = execFileSync('curl', ['-sS', '-f', ...args], { maxBuffer: 16 * 1024 * 1024 }).toString();
  return { seconds: (performance.now() - start) / 1000, out };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

const f = (n: number) => n.toFixed(0);
const x = (n: number) => `${n.toFixed(2)}x`;
const avg = (l: number[]) => l.map((n) => n.toFixed(1)).join(' ');

/**
 * Lets the filesystem settle before a timed write: on this machine's virtual disk (ext4 mounted
 * with online discard) a write into space freed a moment ago runs up to 6x faster than one into
 * space whose discard has completed (dd measured 1.9 GB/s against 300-600 MB/s). Without this
 * the peers' `dd` landed right after the door's delete and the door right after dd's `rm` plus
 * the hashing peers, so dd was timed on the fast path and the door on the slow one. `sync`, then
 * a little more than ext4's 5 s journal commit, puts both writers on the same, slow, footing.
 */
function settleDisk(): void {
  spawnSync('sync');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 6000);
}

/** One round of the machine's limits on `file`, in MiB/s. */
function peers(file: string, work: string): { sha: number; dgst: number; aes: number; disk: number } {
  const aesSeconds = timed('openssl', [
    'enc',
    '-aes-256-ctr',
    '-K',
    '00'.repeat(32),
    '-iv',
    '00'.repeat(16),
    '-in',
    file,
    '-out',
    '/dev/null',
  ]);
  // The door must also make the blob durable: the disk's fsynced write rate bounds the upload.
  const out = join(work, 'dd.out');
  settleDisk();
  const ddSeconds = timed('dd', [`if=${file}`, `of=${out}`, 'bs=1M', 'conv=fsync', 'status=none']);
  rmSync(out);
  return {
    sha: mibs(SIZE, timed('sha256sum', [file])),
    // OpenSSL's SHA-256 uses the CPU's SHA extensions like Node's does; coreutils may not.
    dgst: mibs(SIZE, timed('openssl', ['dgst', '-sha256', file])),
    aes: mibs(SIZE, aesSeconds),
    disk: mibs(SIZE, ddSeconds),
  };
}

/** A tarball shaped like a service release: lockfiles, an app jar with nested jars, a wheel, and big binaries. */
function typicalTarball(file: string, size: number): void {
  const lock = JSON.stringify({
    lockfileVersion: 3,
    packages: Object.fromEntries(
      Array.from({ length: 800 }, (_, i) => [`node_modules/pkg-${i}`, { version: `1.${i % 50}.0` }]),
    ),
  });
  const jar = makeZip([
    {
      name: 'META-INF/maven/org.example/app/pom.properties',
      data: 'groupId=org.example\nartifactId=app\nversion=1.0\n',
    },
    ...Array.from({ length: 40 }, (_, i) => ({
      name: `BOOT-INF/lib/dep-${i}.jar`,
      data: makeZip([
        {
          name: `META-INF/maven/org.dep/dep-${i}/pom.properties`,
          data: `groupId=org.dep\nartifactId=dep-${i}\nversion=2.${i}\n`,
        },
        { name: 'x.class', data: randomBytes(20_000) },
      ]),
    })),
  ]);
  const small = Array.from({ length: 5000 }, (_, i) => ({
    name: `app/src/file-${i}.js`,
    data: `module.exports = ${i};\n`.repeat(20),
  }));
  const big = Math.max(0, size - jar.length - lock.length);
  const chunks = Math.max(1, Math.ceil(big / (64 * 1024 * 1024)));
  const files = [
    { name: 'app/package-lock.json', data: lock },
    { name: 'app/lib/app.jar', data: jar },
    {
      name: 'app/requirements.txt',
      data: Array.from({ length: 200 }, (_, i) => `lib${i}==1.${i}.0`).join('\n'),
    },
    ...small,
    ...Array.from({ length: chunks }, (_, i) => ({
      name: `app/assets/blob-${i}.bin`,
      data: randomBytes(Math.min(64 * 1024 * 1024, big - i * 64 * 1024 * 1024)),
    })),
  ];
  writeFileSync(file, makeTar(files));
}

async function mixedLoad(
  url: string,
  ids: readonly string[],
): Promise<{ p50: number; p99: number; errors: number; count: number }> {
  const latencies: number[] = [];
  let errors = 0;
  const deadline = Date.now() + 120_000;
  const perUser = 20;
  const payload = randomBytes(256 * 1024);
  await Promise.all(
    Array.from({ length: USERS }, async (_, u) => {
      for (let i = 0; i < perUser && Date.now() < deadline; i += 1) {
        const kind = (u + i) % 3;
        const start = performance.now();
        const res =
          kind === 0
            ? await request(`${url}/api/artifacts?limit=20`, { headers: AUTH })
            : kind === 1
              ? await request(`${url}/api/artifacts/${ids[(u + i) % ids.length]}/download`, { headers: AUTH })
              : await request(`${url}/api/artifacts?repository=load&name=u${u}&version=${i}`, {
                  method: 'POST',
                  headers: AUTH,
                  body: payload,
                });
        await res.body.dump({ limit: Number.MAX_SAFE_INTEGER });
        latencies.push(performance.now() - start);
        if (res.statusCode >= 400) errors += 1;
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), errors, count: latencies.length };
}

/** Uploads `file` with `curl -T`, downloads it back, then deletes it; MiB/s each way. */
async function transfer(
  url: string,
  file: string,
  work: string,
  run: number,
): Promise<{ up: number; down: number }> {
  const auth = ['-H', 'authorization: Bearer token-admin'];
  settleDisk();
  const up = curl([
    '-o',
    join(work, 'up.json'),
    ...auth,
    '-H',
    'content-type: application/octet-stream',
    '-T',
    file,
    '-X',
    'POST',
    `${url}/api/artifacts?repository=bench&name=big&version=${run + 1}`,
  ]);
  const created = JSON.parse(readFileSync(join(work, 'up.json'), 'utf8')) as { id: string };
  const down = curl(['-o', '/dev/null', ...auth, `${url}/api/artifacts/${created.id}/download`]);
  curl([...auth, '-X', 'DELETE', `${url}/api/artifacts/${created.id}`]);
  return { up: mibs(SIZE, up.seconds), down: mibs(SIZE, down.seconds) };
}

const work = mkdtempSync(join(tmpdir(), 'gh-bench-artifacts-'));
const home = join(work, 'home');
try {
  const file = join(work, 'big.bin');
  await writeRandom(file, SIZE);
  mkdirSync(home, { recursive: true });
  const door = await spawnDoor(home, { maxArtifactSize: '64GiB', scan: { maxExpandedSize: '64GiB' } });
  const idle = door.peakRss();
  const loadBefore = loadavg();
  const rounds: (ReturnType<typeof peers> & { up: number; down: number })[] = [];
  for (let run = 0; run < RUNS; run += 1) {
    rounds.push({ ...peers(file, work), ...(await transfer(door.url, file, work, run)) });
  }
  const loadAfter = loadavg();
  const peak = door.peakRss();

  const small: string[] = [];
  for (let i = 0; i < 10; i += 1) {
    const res = await request(`${door.url}/api/artifacts?repository=load&name=seed&version=${i}`, {
      method: 'POST',
      headers: AUTH,
      body: randomBytes(512 * 1024),
    });
    small.push(((await res.body.json()) as { id: string }).id);
  }
  const load = await mixedLoad(door.url, small);

  const tarball = join(work, 'release.tar');
  typicalTarball(tarball, SCAN_SIZE);
  const tarSize = statSync(tarball).size;
  const scanUp = curl([
    '-H',
    'authorization: Bearer token-admin',
    '-T',
    tarball,
    '-X',
    'POST',
    `${door.url}/api/artifacts?repository=bench&name=release.tar&version=1&fileName=release.tar`,
  ]);
  const scanId = (JSON.parse(scanUp.out) as { id: string }).id;
  const scanStart = performance.now();
  let state = '';
  let packages = 0;
  while (performance.now() - scanStart < 300_000) {
    const res = await request(`${door.url}/api/artifacts/${scanId}`, { headers: AUTH });
    const item = (await res.body.json()) as { scanState: string; status: string };
    state = item.scanState;
    if (state === 'done' || state === 'failed') break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const scanSeconds = (performance.now() - scanStart) / 1000;
  if (state === 'done') {
    const report = (await (
      await request(`${door.url}/api/artifacts/${scanId}/scan-results`, { headers: AUTH })
    ).body.json()) as { Results: { Packages: unknown[] }[] };
    packages = report.Results.reduce((n, r) => n + r.Packages.length, 0);
  }
  await door.kill('SIGTERM');

  const col = (pick: (r: (typeof rounds)[number]) => number) => median(rounds.map(pick));
  const all = (pick: (r: (typeof rounds)[number]) => number, fmt = f) =>
    rounds.map((r) => fmt(pick(r))).join(', ');
  // The door hashes and encrypts each byte on one thread: the sequential limit adds both costs;
  // the upload must also make the bytes durable, so its limit is the lower of that and dd.
  const limitOf = (r: (typeof rounds)[number]) => 1 / (1 / r.sha + 1 / r.aes);
  const upLimitOf = (r: (typeof rounds)[number]) => Math.min(limitOf(r), r.disk);
  const strictOf = (r: (typeof rounds)[number]) => Math.min(1 / (1 / r.dgst + 1 / r.aes), r.disk);
  console.log(
    `load average ${avg(loadBefore)} before, ${avg(loadAfter)} after; ${RUNS} runs, medians (each run)`,
  );
  console.log(`| measurement | value |\n|---|---|`);
  console.log(`| file | ${f(SIZE / 1048576)} MiB generated random data |`);
  console.log(`| sha256sum | ${f(col((r) => r.sha))} MiB/s (${all((r) => r.sha)}) |`);
  console.log(`| openssl dgst -sha256 | ${f(col((r) => r.dgst))} MiB/s (${all((r) => r.dgst)}) |`);
  console.log(`| openssl enc -aes-256-ctr | ${f(col((r) => r.aes))} MiB/s (${all((r) => r.aes)}) |`);
  console.log(`| dd conv=fsync (durable write) | ${f(col((r) => r.disk))} MiB/s (${all((r) => r.disk)}) |`);
  console.log(
    `| upload limit: min(sha256sum + aes sequential, dd) | ${f(col(upLimitOf))} MiB/s (${all(upLimitOf)}) |`,
  );
  console.log(`| door upload (curl -T) | ${f(col((r) => r.up))} MiB/s (${all((r) => r.up)}) |`);
  console.log(
    `| upload / limit | ${x(col((r) => r.up / upLimitOf(r)))} (${all((r) => r.up / upLimitOf(r), x)}) |`,
  );
  console.log(
    `| upload / min(openssl dgst + aes sequential, dd) | ${x(col((r) => r.up / strictOf(r)))} (${all((r) => r.up / strictOf(r), x)}) |`,
  );
  console.log(`| door download (curl) | ${f(col((r) => r.down))} MiB/s (${all((r) => r.down)}) |`);
  console.log(
    `| download / (sha256sum + aes sequential) | ${x(col((r) => r.down / limitOf(r)))} (${all((r) => r.down / limitOf(r), x)}) |`,
  );
  console.log(`| door RSS idle / peak | ${f(idle / 1048576)} / ${f(peak / 1048576)} MiB |`);
  console.log(
    `| ${USERS} users, ${load.count} mixed requests | p50 ${f(load.p50)} ms, p99 ${f(load.p99)} ms, ${load.errors} errors |`,
  );
  console.log(
    `| scan of a ${f(tarSize / 1048576)} MiB release tarball | ${scanSeconds.toFixed(1)} s (${state}), ${packages} packages |`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
