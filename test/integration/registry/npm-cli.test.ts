/**
 * The real npm CLI installs projects through the registry door from a fixture upstream whose
 * packuments and tarballs were made by `npm pack`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type Gateway, startGateway } from './harness.ts';
import { type NpmUpstream, startNpmUpstream } from './npm-fixture.ts';

const run = promisify(execFile);
const DAY = 86_400_000;
const NOW = Date.now();

let work: string;
let publicUp: NpmUpstream;
let internalUp: NpmUpstream;
let gw: Gateway;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'registry-npm-cli-'));
  publicUp = await startNpmUpstream(join(work, 'public'), [
    {
      name: 'fresh-lib',
      versions: [
        { version: '1.0.0', publishedAt: NOW - 30 * DAY },
        { version: '1.1.0', publishedAt: NOW - 3_600_000 },
      ],
    },
    {
      name: 'vuln-lib',
      versions: [
        { version: '1.0.0', publishedAt: NOW - 60 * DAY },
        { version: '1.0.1', publishedAt: NOW - 40 * DAY },
      ],
    },
  ]);
  internalUp = await startNpmUpstream(join(work, 'internal'), [
    {
      name: '@corp/internal-lib',
      versions: [{ version: '2.0.0', publishedAt: NOW - 3_600_000, dependencies: { 'fresh-lib': '^1.0.0' } }],
    },
  ]);
  gw = await startGateway({
    config: {
      npm: {
        uplinks: [
          { name: 'internal', url: internalUp.url, packages: ['@corp/*'] },
          { name: 'public', url: publicUp.url },
        ],
      },
      pypi: { enabled: false },
      policy: {
        rules: [
          { id: 'min-age', type: 'minimumAge', minimumAge: { age: '2d', exclude: ['@corp/*'] } },
          { id: 'vulns', type: 'vulnerability', vulnerability: { threshold: 'high' } },
        ],
      },
    },
  });
  const osv = join(work, 'osv');
  await mkdir(osv, { recursive: true });
  await writeFile(
    join(osv, 'GHSA-vuln-lib-0001.json'),
    JSON.stringify({
      id: 'GHSA-vuln-lib-0001',
      modified: '2026-01-01T00:00:00Z',
      summary: 'Prototype pollution in vuln-lib',
      database_specific: { severity: 'HIGH' },
      affected: [
        {
          package: { ecosystem: 'npm', name: 'vuln-lib' },
          ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '1.0.1' }] }],
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

async function project(name: string, dependencies: Record<string, string>): Promise<string> {
  const dir = join(work, 'projects', name);
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, 'package.json'),
    JSON.stringify({ name, version: '1.0.0', private: true, dependencies }),
  );
  await writeFile(join(dir, '.npmrc'), '');
  return dir;
}

async function npm(dir: string, args: string[]): Promise<{ ok: boolean; output: string }> {
  const flags = [
    `--registry=${gw.url}/npm/`,
    `--cache=${join(work, 'npm-cache', String(Math.random()))}`,
    `--userconfig=${join(dir, '.npmrc')}`,
    '--no-audit',
    '--no-fund',
    '--ignore-scripts',
    '--loglevel=notice',
    // The machine's npm may omit `resolved` from lockfiles, and `npm test` passes its own config
    // to children as npm_config_* variables; the lockfile assertions need the default.
    '--omit-lockfile-registry-resolved=false',
  ];
  try {
    const { stdout, stderr } = await run('npm', [...args, ...flags], { cwd: dir, timeout: 120_000 });
    return { ok: true, output: stdout + stderr };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

const installed = async (dir: string, name: string) =>
  (JSON.parse(await readFile(join(dir, 'node_modules', name, 'package.json'), 'utf8')) as { version: string })
    .version;

void describe('npm CLI through the registry door', () => {
  void it('skips a too-new version for the newest passing one and lets an excluded internal package through', async () => {
    const dir = await project('app-ok', {
      'fresh-lib': '^1.0.0',
      '@corp/internal-lib': '^2.0.0',
      'vuln-lib': '^1.0.0',
    });
    const r = await npm(dir, ['install']);
    assert.ok(r.ok, r.output);
    assert.equal(await installed(dir, 'fresh-lib'), '1.0.0');
    assert.equal(await installed(dir, '@corp/internal-lib'), '2.0.0');
    assert.equal(await installed(dir, 'vuln-lib'), '1.0.1');
    const lock = JSON.parse(await readFile(join(dir, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { resolved: string }>;
    };
    assert.equal(
      lock.packages['node_modules/fresh-lib']?.resolved,
      `${gw.url}/npm/fresh-lib/-/fresh-lib-1.0.0.tgz`,
    );
    assert.ok(
      internalUp.requests.includes('GET /@corp/internal-lib'),
      'the internal uplink served the scoped package',
    );
    assert.ok(
      !publicUp.requests.some((r) => r.includes('@corp')),
      'the public uplink never saw the internal name',
    );
  });

  void it('fails a pinned vulnerable version and npm prints the reason', async () => {
    const dir = await project('app-vuln', { 'vuln-lib': '1.0.0' });
    const r = await npm(dir, ['install']);
    assert.equal(r.ok, false, r.output);
    assert.match(r.output, /GHSA-vuln-lib-0001/);
    assert.match(r.output, /Prototype pollution in vuln-lib/);
  });

  void it('refuses the tarball of a blocked version named by a lockfile (403 with the reason)', async () => {
    const dir = await project('app-lock', { 'vuln-lib': '1.0.0' });
    const tarball = publicUp.tarballs.get('vuln-lib/-/vuln-lib-1.0.0.tgz') as Buffer;
    const { createHash } = await import('node:crypto');
    const integrity = `sha512-${createHash('sha512').update(tarball).digest('base64')}`;
    await writeFile(
      join(dir, 'package-lock.json'),
      JSON.stringify({
        name: 'app-lock',
        version: '1.0.0',
        lockfileVersion: 3,
        requires: true,
        packages: {
          '': { name: 'app-lock', version: '1.0.0', dependencies: { 'vuln-lib': '1.0.0' } },
          'node_modules/vuln-lib': {
            version: '1.0.0',
            resolved: `${gw.url}/npm/vuln-lib/-/vuln-lib-1.0.0.tgz`,
            integrity,
          },
        },
      }),
    );
    const r = await npm(dir, ['ci']);
    assert.equal(r.ok, false, r.output);
    assert.match(r.output, /403/);
    assert.match(r.output, /GHSA-vuln-lib-0001/);
    // verify() writes queued audit events first, so the query sees them.
    await gw.core.audit.verify();
    const page = await gw.core.audit.query({
      action: 'registry.decision',
      resource: 'npm:vuln-lib@1.0.0',
      decision: 'deny',
    });
    assert.ok(page.events.length > 0, 'the refusal was audited');
    const rules = page.events[0]?.details?.['rules'] as { id: string; outcome: string }[];
    assert.deepEqual(
      rules.map((x) => `${x.id}:${x.outcome}`),
      ['min-age:allow', 'vulns:deny'],
    );
  });
});
