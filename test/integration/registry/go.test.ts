/**
 * The real go command fetches modules through the registry door (GOPROXY protocol) from a
 * fixture module proxy built in the test; no network beyond loopback, no checksum database
 * beyond the fixture's (which the go command also reads through the door).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type GoUpstream, startGoUpstream } from './go-fixture.ts';
import { ageRuleEscapes, type Gateway, startGateway } from './harness.ts';

const run = promisify(execFile);
const DAY = 86_400_000;
const NOW = Date.now();
const iso = (t: number) => new Date(t).toISOString();
const pkg = (name: string, v: string) => ({ [`${name}.go`]: `package ${name}\n\nconst Version = "${v}"\n` });

let work: string;
let up: GoUpstream;
let gw: Gateway;
let config: Record<string, unknown>;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'registry-go-'));
  up = await startGoUpstream({
    'example.test/lib': [
      { version: 'v1.0.0', time: iso(NOW - 30 * DAY), files: pkg('lib', 'v1.0.0') },
      { version: 'v1.1.0', time: iso(NOW - 3_600_000), files: pkg('lib', 'v1.1.0') },
    ],
    'example.test/Vuln': [
      { version: 'v1.0.0', time: iso(NOW - 60 * DAY), files: pkg('vuln', 'v1.0.0') },
      { version: 'v1.0.1', time: iso(NOW - 40 * DAY), files: pkg('vuln', 'v1.0.1') },
    ],
    'example.test/tampered': [
      { version: 'v1.0.0', time: iso(NOW - 60 * DAY), files: pkg('tampered', 'v1'), wrongSum: true },
    ],
    'example.test/limited': [{ version: 'v1.0.0', time: iso(NOW - 60 * DAY), files: pkg('limited', 'v1') }],
    'example.test/forkcheck': [
      { version: 'v1.0.0', time: iso(NOW - 60 * DAY), files: pkg('forkcheck', 'v1') },
    ],
    'example.test/together': [
      { version: 'v1.0.0', time: iso(NOW - 60 * DAY), files: pkg('together', 'v1.0.0') },
    ],
    'example.test/headed': [
      { version: 'v1.0.0', time: iso(NOW - 60 * DAY), files: pkg('headed', 'v1.0.0') },
      { version: 'v1.1.0', time: iso(NOW - 3_600_000), files: pkg('headed', 'v1.1.0') },
    ],
    'example.test/backdated': [
      { version: 'v1.0.0', time: iso(NOW - 60 * DAY), files: pkg('backdated', 'v1.0.0') },
      // A new tag whose commit claims to be 30 days old.
      { version: 'v1.0.1', time: iso(NOW - 30 * DAY), files: pkg('backdated', 'v1.0.1'), hidden: true },
    ],
    // An old module (no go directive: its requirements are not pruned) that needs the vulnerable
    // version, which a build that also requires the fixed version never selects.
    'example.test/olddep': [
      {
        version: 'v1.0.0',
        time: iso(NOW - 50 * DAY),
        files: {
          'olddep.go': 'package olddep\n\nimport vuln "example.test/Vuln"\n\nconst Version = vuln.Version\n',
        },
        goMod: 'module example.test/olddep\n\nrequire example.test/Vuln v1.0.0\n',
      },
    ],
    'example.test/crowd': [{ version: 'v1.0.0', time: iso(NOW - 60 * DAY), files: pkg('crowd', 'v1.0.0') }],
    'example.test/forged': [
      { version: 'v1.0.0', time: iso(NOW - 60 * DAY), files: pkg('forged', 'v1'), forgedLookup: true },
    ],
  });
  up.limited.add('example.test/limited');
  config = {
    npm: { enabled: false },
    go: {
      uplinks: [{ name: 'goproxy', url: `${up.url}/`, retries: 0 }],
      checksumDb: { name: 'sumdb', url: `${up.url}/sumdb/test/` },
      checksumDbKey: up.sumdbKey,
    },
    policy: {
      rules: [
        { id: 'min-age', type: 'minimumAge', minimumAge: { age: '2d' } },
        { id: 'vulns', type: 'vulnerability' },
      ],
    },
  };
  gw = await startGateway({ config });
  const osv = join(work, 'osv');
  await mkdir(osv, { recursive: true });
  await writeFile(
    join(osv, 'GO-2026-0001.json'),
    JSON.stringify({
      id: 'GO-2026-0001',
      modified: '2026-01-01T00:00:00Z',
      summary: 'Remote code execution in example.test/Vuln',
      database_specific: { severity: 'CRITICAL' },
      affected: [
        {
          package: { ecosystem: 'Go', name: 'example.test/Vuln' },
          ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '1.0.1' }] }],
        },
      ],
    }),
  );
  await gw.door.vulndb().import(osv);
});

after(async () => {
  await gw?.[Symbol.asyncDispose]();
  await up?.[Symbol.asyncDispose]();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

async function go(
  dir: string,
  args: string[],
  extra: Readonly<Record<string, string>> = {},
): Promise<{ ok: boolean; output: string }> {
  const env = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: work,
    GOPROXY: `${gw.url}/go/`,
    GOFLAGS: '-mod=mod',
    GOSUMDB: 'off',
    GONOSUMDB: '*',
    GOPRIVATE: '',
    GOTOOLCHAIN: 'local',
    GOPATH: join(work, 'gopath'),
    GOMODCACHE: join(work, 'gopath', 'mod'),
    GOCACHE: join(work, 'gocache'),
    CGO_ENABLED: '0',
    ...extra,
  };
  try {
    const { stdout, stderr } = await run('go', args, { cwd: dir, env, timeout: 120_000 });
    return { ok: true, output: stdout + stderr };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** The upstream path of a version's zip of example.test/headed. */
const zip = (v: string) => `/example.test/headed/@v/${v}.zip`;
/** How many requests of that method the fixture proxy received for that zip. */
const asked = (method: string, v: string) => up.requests.filter((r) => r === `${method} ${zip(v)}`).length;

async function project(name: string, main: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'go.mod'), `module example.test/${name}\n\ngo 1.19\n`);
  await writeFile(join(dir, 'main.go'), main);
  return dir;
}

void describe('go through the registry door', () => {
  void it('builds with the newest allowed versions; go.sum matches the checksum database', async () => {
    const dir = await project(
      'app',
      'package main\n\nimport (\n\t"fmt"\n\t"example.test/lib"\n\tvuln "example.test/Vuln"\n)\n\nfunc main() { fmt.Println(lib.Version, vuln.Version) }\n',
    );
    const got = await go(dir, ['get', 'example.test/lib@latest', 'example.test/Vuln@latest']);
    assert.ok(got.ok, got.output);
    const built = await go(dir, ['run', '.']);
    assert.ok(built.ok, built.output);
    assert.equal(built.output.trim(), 'v1.0.0 v1.0.1');
    const sum = await readFile(join(dir, 'go.sum'), 'utf8');
    for (const line of sum.trim().split('\n')) {
      const [mod, ver, hash] = line.split(' ');
      assert.equal(hash, up.sums.get(`${mod} ${ver}`), line);
    }
    assert.ok(up.requests.includes('GET /example.test/!vuln/@v/list'));
  });

  void it('refuses a too-young and a vulnerable version with 403 and the reason, as go prints it', async () => {
    const dir = await project('pinned', 'package main\n\nfunc main() {}\n');
    const young = await go(dir, ['get', 'example.test/lib@v1.1.0']);
    assert.ok(!young.ok);
    assert.match(young.output, /403 Forbidden/);
    assert.match(young.output, /minimum age is 2d/);
    const vuln = await go(dir, ['get', 'example.test/Vuln@v1.0.0']);
    assert.ok(!vuln.ok);
    assert.match(vuln.output, /GO-2026-0001/);
    for (const ext of ['info', 'zip']) {
      const r = await fetch(`${gw.url}/go/example.test/!vuln/@v/v1.0.0.${ext}`);
      assert.equal(r.status, 403, ext);
    }
    const list = await (await fetch(`${gw.url}/go/example.test/lib/@v/list`)).text();
    assert.equal(list, 'v1.0.0\n');
    const latest = (await (await fetch(`${gw.url}/go/example.test/lib/@latest`)).json()) as {
      Version: string;
    };
    assert.equal(latest.Version, 'v1.0.0');
  });

  void it('serves the go.mod of a refused version, which the module graph needs, and still refuses its code', async () => {
    // Minimal version selection reads the go.mod of every version a requirement names, selected
    // or not: a refused go.mod failed `go mod tidy` of a build that requires the fixed version.
    const dir = await project(
      'graph',
      'package main\n\nimport (\n\t"fmt"\n\t"example.test/olddep"\n)\n\nfunc main() { fmt.Println(olddep.Version) }\n',
    );
    await writeFile(
      join(dir, 'go.mod'),
      'module example.test/graph\n\ngo 1.16\n\nrequire (\n\texample.test/Vuln v1.0.1\n\texample.test/olddep v1.0.0\n)\n',
    );
    const tidy = await go(dir, ['mod', 'tidy']);
    assert.ok(tidy.ok, tidy.output);
    const built = await go(dir, ['run', '.']);
    assert.ok(built.ok, built.output);
    assert.equal(built.output.trim(), 'v1.0.1');
    const mod = await fetch(`${gw.url}/go/example.test/!vuln/@v/v1.0.0.mod`);
    assert.equal(mod.status, 200);
    assert.equal(await mod.text(), 'module example.test/Vuln\n\ngo 1.19\n');
    assert.equal((await fetch(`${gw.url}/go/example.test/!vuln/@v/v1.0.0.zip`)).status, 403);
  });

  void it('downloads and checks a module zip once for concurrent cold requests', async () => {
    // CI runners starting together all miss the same zip: one download, one h1 check, one blob.
    const url = `${gw.url}/go/example.test/crowd/@v/v1.0.0.zip`;
    const answers = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const r = await fetch(url);
        return { status: r.status, bytes: Buffer.from(await r.arrayBuffer()) };
      }),
    );
    for (const a of answers) assert.equal(a.status, 200);
    assert.ok(answers.every((a) => a.bytes.equals(answers[0]?.bytes ?? Buffer.alloc(0))));
    assert.equal(up.requests.filter((r) => r === 'GET /example.test/crowd/@v/v1.0.0.zip').length, 1);
  });

  void it('serves a repeated .info from the cache, decided and audited once per policy and cut-off', async () => {
    const url = `${gw.url}/go/example.test/lib/@v/v1.0.0.info`;
    // verify() writes what is queued before it reads, so queries see every event recorded so far.
    const decisions = async () => {
      await gw.core.audit.verify();
      const page = await gw.core.audit.query({
        action: 'registry.metadata',
        resource: 'go:example.test/lib',
      });
      return page.events.filter((e) => e.reason === '1 of 1 versions served').length;
    };
    await gw.door.invalidate('go', 'example.test/lib');
    const before = await decisions();
    const first = await fetch(url);
    assert.equal(first.status, 200);
    const etag = first.headers.get('etag') ?? '';
    assert.deepEqual(((await first.json()) as { Version: string }).Version, 'v1.0.0');
    for (let i = 0; i < 3; i++) assert.equal((await fetch(url)).status, 200);
    assert.equal((await fetch(url, { headers: { 'if-none-match': etag } })).status, 304);
    assert.equal(await decisions(), before + 1);
    // A refusal is never cached: every request is decided, refused and audited again.
    for (let i = 0; i < 2; i++)
      assert.equal((await fetch(`${gw.url}/go/example.test/lib/@v/v1.1.0.info`)).status, 403);
    await gw.core.audit.verify();
    const refused = await gw.core.audit.query({
      action: 'registry.decision',
      resource: 'go:example.test/lib@v1.1.0',
    });
    assert.ok(refused.events.length >= 2, `${refused.events.length} refusals audited`);
  });

  void it("answers concurrent cold misses of a module's list, @latest and .info, each with its own document", async () => {
    const base = `${gw.url}/go/example.test/together`;
    const [list, latest, info] = (await Promise.all(
      ['@v/list', '@latest', '@v/v1.0.0.info'].map((p) => fetch(`${base}/${p}`)),
    )) as [Response, Response, Response];
    assert.equal(list.status, 200);
    assert.equal(await list.text(), 'v1.0.0\n');
    assert.equal(latest.status, 200);
    assert.equal(((await latest.json()) as { Version: string }).Version, 'v1.0.0');
    assert.equal(info.status, 200);
    assert.equal(((await info.json()) as { Version: string }).Version, 'v1.0.0');
  });

  void it('lets a young version through by exclusion, per-registry rule exclusion and override', async () => {
    const base = `${gw.url}/go/example.test/lib/@v`;
    await ageRuleEscapes(gw, config, { registry: 'goproxy', pattern: 'example.test/l*' }, async (label) => {
      assert.equal(await (await fetch(`${base}/list`)).text(), 'v1.0.0\nv1.1.0\n', label);
      assert.equal((await fetch(`${base}/v1.1.0.info`)).status, 200, label);
      assert.equal((await fetch(`${base}/v1.1.0.mod`)).status, 200, label);
    });
    assert.equal(await (await fetch(`${base}/list`)).text(), 'v1.0.0\n');
    assert.equal((await fetch(`${base}/v1.1.0.info`)).status, 403);
  });

  void it('refuses a checksum database answer that is not proven into its signed tree', async () => {
    for (const ext of ['mod', 'zip']) {
      const r = await fetch(`${gw.url}/go/example.test/forged/@v/v1.0.0.${ext}`);
      assert.equal(r.status, 502, ext);
      assert.match(await r.text(), /unverifiable answer .*record \d+ is not in the signed tree/, ext);
    }
    await gw.core.audit.verify();
    const events = await gw.core.audit.query({
      action: 'registry.upstream.invalid',
      resource: 'go:example.test/forged@v1.0.0',
    });
    assert.ok(events.events.length >= 1);
    assert.ok(up.requests.some((r) => r.startsWith('GET /sumdb/test/tile/8/0/000.p/')));
  });

  void it('refuses a checksum database that shows a tree inconsistent with one it showed before', async () => {
    up.fork(true);
    try {
      // Tiles cached from the first history would fail the inclusion proof already; without them
      // (another replica, or after eviction) the remembered tree head catches the fork.
      await gw.core.cache.deletePrefix('reg:v1:gosumdb:sumdb|tile/');
      const r = await fetch(`${gw.url}/go/example.test/forkcheck/@v/v1.0.0.mod`);
      assert.equal(r.status, 502);
      assert.match(await r.text(), /unverifiable answer .*is not a prefix of the tree .*\(a fork\)/);
    } finally {
      up.fork(false);
    }
    assert.equal((await fetch(`${gw.url}/go/example.test/forkcheck/@v/v1.0.0.mod`)).status, 200);
  });

  void it('refuses a zip whose h1 hash differs from the checksum database, and audits it', async () => {
    const dir = await project('tampered-app', 'package main\n\nfunc main() {}\n');
    const r = await go(dir, ['get', 'example.test/tampered@v1.0.0']);
    assert.ok(!r.ok);
    assert.match(r.output, /does not match its h1 hash/);
    const again = await fetch(`${gw.url}/go/example.test/tampered/@v/v1.0.0.zip`);
    assert.equal(again.status, 502);
    // verify() writes queued audit events first, so the query sees them.
    await gw.core.audit.verify();
    const events = await gw.core.audit.query({ action: 'registry.integrity.mismatch' });
    assert.ok(events.events.some((e) => e.resource === 'go:example.test/tampered@v1.0.0'));
  });

  void it('answers a HEAD of a module zip without downloading it, from the cache once a GET did', async () => {
    const size = (await (await fetch(`${up.url}${zip('v1.0.0')}`)).arrayBuffer()).byteLength;
    up.requests.splice(up.requests.lastIndexOf(`GET ${zip('v1.0.0')}`), 1);
    const head = await fetch(`${gw.url}/go${zip('v1.0.0')}`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(size));
    assert.equal(head.headers.get('content-type'), 'application/zip');
    assert.deepEqual([asked('HEAD', 'v1.0.0'), asked('GET', 'v1.0.0')], [1, 0]);
    // Nothing was cached: the GET downloads (and checks) the zip, then a HEAD asks the uplink nothing.
    const got = await fetch(`${gw.url}/go${zip('v1.0.0')}`);
    assert.equal(got.status, 200);
    assert.equal((await got.arrayBuffer()).byteLength, size);
    assert.deepEqual([asked('HEAD', 'v1.0.0'), asked('GET', 'v1.0.0')], [1, 1]);
    const cached = await fetch(`${gw.url}/go${zip('v1.0.0')}`, { method: 'HEAD' });
    assert.equal(cached.status, 200);
    assert.equal(cached.headers.get('content-length'), String(size));
    assert.deepEqual([asked('HEAD', 'v1.0.0'), asked('GET', 'v1.0.0')], [1, 1]);
    // A refused version is refused alike, and its zip is not asked for.
    const young = await fetch(`${gw.url}/go${zip('v1.1.0')}`, { method: 'HEAD' });
    assert.equal(young.status, 403);
    assert.equal((await fetch(`${gw.url}/go${zip('v1.1.0')}`)).status, 403);
    assert.deepEqual([asked('HEAD', 'v1.1.0'), asked('GET', 'v1.1.0')], [0, 0]);
  });

  void it('answers malformed paths and versions with 400, unknown modules with 404, upstream 429 with 429', async () => {
    for (const bad of [
      'Example.test/x/@v/list',
      'example.test/x/@v/v1.0.info',
      'example.test/x/@v/V1.0.0.mod',
      'example.test/.hidden/@v/list',
      'example.test/a%20b/@v/list',
    ]) {
      const r = await fetch(`${gw.url}/go/${bad}`);
      assert.equal(r.status, 400, bad);
      assert.match(await r.text(), /Invalid Go/);
    }
    assert.equal((await fetch(`${gw.url}/go/example.test/missing/@v/list`)).status, 404);
    const limited = await fetch(`${gw.url}/go/example.test/limited/@v/list`);
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('retry-after'), '7');
    assert.match(await limited.text(), /rate limited/);
  });
  void it('serves the checksum database GOSUMDB names, so the go command checks go.sum through the door alone', async () => {
    const dir = await project(
      'sumdb-app',
      'package main\n\nimport "example.test/lib"\n\nfunc main() { println(lib.Version) }\n',
    );
    const lookup = 'GET /sumdb/test/lookup/example.test/lib@v1.0.0';
    // A fresh GOPATH: no go.sum lines or tree heads remembered from the tests above. The name
    // "sum.example.test" resolves nowhere, so the go command reaches the database only through
    // the door (`<GOPROXY>/sumdb/sum.example.test/supported` must answer 200).
    const fresh = {
      GOSUMDB: up.sumdbKey,
      GONOSUMDB: '',
      GOPATH: join(work, 'sumdb-gopath'),
      GOMODCACHE: join(work, 'sumdb-gopath', 'mod'),
    };
    const got = await go(dir, ['get', 'example.test/lib@v1.0.0'], fresh);
    assert.ok(got.ok, got.output);
    const sum = await readFile(join(dir, 'go.sum'), 'utf8');
    assert.match(sum, /^example\.test\/lib v1\.0\.0 h1:/m);
    for (const line of sum.trim().split('\n')) {
      const [mod, ver, hash] = line.split(' ');
      assert.equal(hash, up.sums.get(`${mod} ${ver}`), line);
    }
    // The door proved the lookup once (for the go command and its own download check, in
    // whichever order they came) and answers the next from its cache.
    const sumdb = `${gw.url}/go/sumdb/sum.example.test`;
    const answer = await fetch(`${sumdb}/lookup/example.test/lib@v1.0.0`);
    assert.equal(answer.status, 200);
    assert.match(await answer.text(), /^\d+\nexample\.test\/lib v1\.0\.0 h1:.*\n\ngo\.sum database tree\n/s);
    assert.equal(up.requests.filter((r) => r === lookup).length, 1);
    // A forged record fails the door's proof: the go command never sees it.
    const forged = await go(dir, ['get', 'example.test/forged@v1.0.0'], fresh);
    assert.ok(!forged.ok);
    assert.match(forged.output, /unverifiable answer/);
  });

  void it('serves checksum database tiles and the signed tree head, checked, and refuses every other path', async () => {
    const sumdb = `${gw.url}/go/sumdb/sum.example.test`;
    assert.equal((await fetch(`${sumdb}/supported`)).status, 200);
    const tile = await fetch(`${sumdb}/tile/8/0/000.p/3`);
    assert.equal(tile.status, 200);
    assert.equal(tile.headers.get('content-type'), 'application/octet-stream');
    assert.equal((await tile.arrayBuffer()).byteLength, 3 * 32);
    const latest = await fetch(`${sumdb}/latest`);
    assert.equal(latest.status, 200);
    assert.match(await latest.text(), /^go\.sum database tree\n\d+\n\S{44}\n\n\u2014 sum\.example\.test /);
    // Another database's name: the go command goes on to the next GOPROXY entry or direct.
    for (const other of ['sum.other.test/supported', 'sumdb/supported', 'sum.example.test.evil/latest']) {
      const r = await fetch(`${gw.url}/go/sumdb/${other}`);
      assert.equal(r.status, 404, other);
    }
    for (const bad of [
      'tile/8/0/x000/001',
      'tile/8/0/001.p/256',
      'tile/8/0/001.p/0',
      'tile/9/0/000',
      'tile/8/0/00',
      'tile/8/../000',
      'lookup/',
      'lookups/example.test/lib@v1.0.0',
      'nothing',
    ]) {
      const r = await fetch(`${sumdb}/${bad}`);
      assert.equal(r.status, 404, bad);
    }
    for (const bad of [
      'lookup/example.test/lib@1.0.0',
      'lookup/Example.test/lib@v1.0.0',
      'lookup/example.test/lib@v1.0.0.',
    ]) {
      const r = await fetch(`${sumdb}/${bad}`);
      assert.equal(r.status, 400, bad);
    }
    assert.equal((await fetch(`${sumdb}/lookup/example.test/missing@v1.0.0`)).status, 404);
    up.damage('tiles');
    try {
      const short = await fetch(`${sumdb}/tile/8/0/000.p/4`);
      assert.equal(short.status, 502);
      assert.match(await short.text(), /has 127 bytes, not 128/);
    } finally {
      up.damage(undefined);
    }
    assert.equal((await fetch(`${sumdb}/tile/8/0/000.p/4`)).status, 200);
    up.damage('latest');
    try {
      const forged = await fetch(`${sumdb}/latest`);
      assert.equal(forged.status, 502);
      assert.match(await forged.text(), /signature of "sum\.example\.test" is invalid/);
    } finally {
      up.damage(undefined);
    }
    await gw.core.audit.verify();
    const events = await gw.core.audit.query({
      action: 'registry.upstream.invalid',
      resource: 'go:sumdb/sum.example.test',
    });
    assert.equal(events.events.length, 1);
  });
  void it('dates a new tag no earlier than the last list read without it, whatever its commit time says', async () => {
    const base = `${gw.url}/go/example.test/backdated/@v`;
    assert.equal(await (await fetch(`${base}/list`)).text(), 'v1.0.0\n');
    up.reveal('example.test/backdated');
    await gw.door.invalidate('go', 'example.test/backdated');
    // v1.0.1 was not there a moment ago, so it is moments old (under the 2-day minimum age),
    // although its commit time says 30 days.
    assert.equal(await (await fetch(`${base}/list`)).text(), 'v1.0.0\n');
    const info = await fetch(`${base}/v1.0.1.info`);
    assert.equal(info.status, 403);
    assert.match(await info.text(), /minimum age is 2d/);
    // The bound is durable: with the cached list and index gone, a direct request is refused too.
    await gw.door.invalidate('go', 'example.test/backdated');
    for (const ext of ['info', 'zip']) assert.equal((await fetch(`${base}/v1.0.1.${ext}`)).status, 403, ext);
    // The version seen in the first read keeps its own (older) time.
    assert.equal((await fetch(`${base}/v1.0.0.info`)).status, 200);
  });
});
