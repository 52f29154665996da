/**
 * The real pip installs through the registry door from a fixture PEP 691 upstream serving wheels
 * and sdists built in the test; no network beyond loopback.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type Gateway, startGateway } from './harness.ts';
import { type PypiUpstream, startPypiUpstream } from './pypi-fixture.ts';

const run = promisify(execFile);
const DAY = 86_400_000;
const NOW = Date.now();

let work: string;
let publicUp: PypiUpstream;
let internalUp: PypiUpstream;
let gw: Gateway;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'registry-pip-'));
  publicUp = await startPypiUpstream(join(work, 'public'), {
    'fresh-py': [
      { version: '1.0', publishedAt: NOW - 30 * DAY },
      { version: '1.1', publishedAt: NOW - 3_600_000 },
    ],
    'vuln-py': [
      { version: '1.0', publishedAt: NOW - 60 * DAY },
      { version: '1.0.1', publishedAt: NOW - 40 * DAY },
    ],
    'bare-meta': [{ version: '1.0', publishedAt: NOW - 30 * DAY }],
  });
  internalUp = await startPypiUpstream(join(work, 'internal'), {
    'corp-internal': [{ version: '2.0', publishedAt: NOW - 3_600_000 }],
  });
  gw = await startGateway({
    config: {
      npm: { enabled: false },
      pypi: {
        uplinks: [
          { name: 'internal', url: `${internalUp.url}/simple/`, packages: ['corp-*'] },
          { name: 'pypi', url: `${publicUp.url}/simple/` },
        ],
      },
      policy: {
        rules: [
          { id: 'min-age', type: 'minimumAge', minimumAge: { age: '2d', exclude: ['corp-*'] } },
          { id: 'vulns', type: 'vulnerability' },
        ],
      },
    },
  });
  const osv = join(work, 'osv');
  await mkdir(osv, { recursive: true });
  await writeFile(
    join(osv, 'PYSEC-2026-1.json'),
    JSON.stringify({
      id: 'PYSEC-2026-1',
      modified: '2026-01-01T00:00:00Z',
      summary: 'Remote code execution in vuln-py',
      severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }],
      affected: [
        {
          package: { ecosystem: 'PyPI', name: 'vuln_py' },
          ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '1.0.1' }] }],
        },
      ],
    }),
  );
  await gw.door.vulndb().import(osv);
});

after(async () => {
  await gw?.[Symbol.asyncDispose]();
  await publicUp?.[Symbol.asyncDispose]();
  await internalUp?.[Symbol.asyncDispose]();
  await rm(work, { recursive: true, force: true });
});

async function pip(target: string, requirements: string[]): Promise<{ ok: boolean; output: string }> {
  const args = [
    '-m',
    'pip',
    'install',
    '--isolated',
    '--index-url',
    `${gw.url}/pypi/simple/`,
    '--no-cache-dir',
    '--disable-pip-version-check',
    '--no-input',
    '--target',
    target,
    ...requirements,
  ];
  try {
    const { stdout, stderr } = await run('python3', args, { timeout: 120_000 });
    return { ok: true, output: stdout + stderr };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

const installedVersions = async (target: string) =>
  (await readdir(target)).filter((d) => d.endsWith('.dist-info')).sort();

void describe('pip through the registry door', () => {
  void it('installs the newest version old enough and an excluded internal project from its own uplink', async () => {
    const target = join(work, 't1');
    const r = await pip(target, ['fresh-py', 'Corp_Internal', 'vuln-py']);
    assert.ok(r.ok, r.output);
    assert.deepEqual(await installedVersions(target), [
      'corp_internal-2.0.dist-info',
      'fresh_py-1.0.dist-info',
      'vuln_py-1.0.1.dist-info',
    ]);
    assert.ok(internalUp.requests.includes('GET /simple/corp-internal/'));
    assert.ok(
      !publicUp.requests.some((p) => p.includes('corp')),
      'the public uplink never saw the internal name',
    );
    assert.ok(
      publicUp.requests.some((p) => p.endsWith('.whl.metadata')),
      'PEP 658 metadata went through the door',
    );
  });

  void it('fails a pinned vulnerable version and pip prints the reason', async () => {
    const r = await pip(join(work, 't2'), ['vuln-py==1.0']);
    assert.equal(r.ok, false, r.output);
    assert.match(r.output, /PYSEC-2026-1/);
    assert.match(r.output, /403/);
  });

  void it('fails a pinned too-new version with the time it will be allowed', async () => {
    const r = await pip(join(work, 't3'), ['fresh-py==1.1']);
    assert.equal(r.ok, false, r.output);
    assert.match(r.output, /minimum age is 2d; allowed from \d{4}-/);
  });

  void it('installs from an uplink that announces PEP 658 metadata without its digest', async () => {
    // PEP 658 allows `"core-metadata": true` (no hash). The door verifies every byte it serves, so
    // it cannot serve such a `.metadata` file; it must not announce one either: pip treats a 404
    // for an announced `.metadata` as a failed install instead of reading the wheel.
    const page = (await (await fetch(`${publicUp.url}/simple/bare-meta/`)).json()) as {
      files: Record<string, unknown>[];
    };
    for (const f of page.files) if (f['core-metadata'] !== undefined) f['core-metadata'] = true;
    publicUp.override('/simple/bare-meta/', {
      status: 200,
      body: JSON.stringify(page),
      headers: { 'content-type': 'application/vnd.pypi.simple.v1+json' },
    });
    const target = join(work, 't4');
    const r = await pip(target, ['bare-meta']);
    assert.ok(r.ok, r.output);
    assert.deepEqual(await installedVersions(target), ['bare_meta-1.0.dist-info']);
  });
});
