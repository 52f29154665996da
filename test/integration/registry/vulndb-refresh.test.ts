/**
 * Metadata is re-decided when the vulnerability data changes: a version that a new advisory
 * names leaves cached metadata at the next request, without waiting for metadataTtl; while the
 * uplink is down the last good copy is still served, and the advised file is refused.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Gateway, startGateway, TestClock } from './harness.ts';
import { type NpmUpstream, startNpmUpstream } from './npm-fixture.ts';

const DAY = 86_400_000;
const NOW = Date.now();
let work: string;
let up: NpmUpstream;
let gw: Gateway;
const clock = new TestClock(NOW);
const old = (version: string) => ({ version, publishedAt: NOW - 30 * DAY });

/** Imports one HIGH advisory for `name` at exactly `version`. */
async function advise(id: string, name: string, version: string): Promise<void> {
  const dir = join(work, id);
  await mkdir(dir, { recursive: true });
  const affected = [{ package: { ecosystem: 'npm', name }, versions: [version] }];
  const record = { id, modified: '2026-01-01T00:00:00Z', summary: `Flaw in ${name}`, affected };
  await writeFile(
    join(dir, `${id}.json`),
    JSON.stringify({ ...record, database_specific: { severity: 'HIGH' } }),
  );
  await gw.door.vulndb().import(dir);
}

const versions = async (name: string) => {
  const res = await fetch(`${gw.url}/npm/${name}`);
  return {
    status: res.status,
    versions: res.ok ? Object.keys(((await res.json()) as { versions: object }).versions) : [],
  };
};

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'registry-vulndb-refresh-'));
  up = await startNpmUpstream(join(work, 'up'), [
    { name: 'late-lib', versions: [old('1.0.0'), old('1.1.0')] },
    { name: 'kept-lib', versions: [old('2.0.0'), old('2.1.0')] },
  ]);
  gw = await startGateway({
    clock,
    config: {
      npm: { uplinks: [{ name: 'public', url: up.url, retries: 0 }] },
      pypi: { enabled: false },
      policy: { rules: [{ id: 'vulns', type: 'vulnerability', vulnerability: { threshold: 'high' } }] },
    },
  });
  await advise('GHSA-other-0001', 'other-lib', '1.0.0');
});

after(async () => {
  await gw?.[Symbol.asyncDispose]();
  await up?.[Symbol.asyncDispose]();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

void describe('a vulnerability import', () => {
  void it('hides a newly advised version from cached metadata at the next request', async () => {
    assert.deepEqual((await versions('late-lib')).versions, ['1.0.0', '1.1.0']);
    await advise('GHSA-late-0001', 'late-lib', '1.1.0');
    assert.deepEqual((await versions('late-lib')).versions, ['1.0.0']);
  });

  void it('serves the last good copy while the uplink is down, and refuses the newly advised file', async () => {
    assert.deepEqual((await versions('kept-lib')).versions, ['2.0.0', '2.1.0']);
    await advise('GHSA-kept-0001', 'kept-lib', '2.1.0');
    // Past metadataTtl (5m) the uplink is asked again, and it is down: the copy filtered before
    // the import is served stale (an outage after an import must not break every install)...
    clock.time += 10 * 60_000;
    up.override('kept-lib', { status: 503, body: 'maintenance' });
    const stale = await fetch(`${gw.url}/npm/kept-lib`);
    assert.equal(stale.status, 200);
    assert.match(stale.headers.get('warning') ?? '', /^110 /);
    const doc = (await stale.json()) as { versions: Record<string, { dist: { tarball: string } }> };
    assert.deepEqual(Object.keys(doc.versions), ['2.0.0', '2.1.0']);
    // ...but the file of the version the new advisory names is decided afresh, and refused.
    const file = await fetch(doc.versions['2.1.0']?.dist.tarball ?? '');
    assert.equal(file.status, 403);
    assert.match(await file.text(), /GHSA-kept-0001/);
    // The other version's file is served from the facts of the stale copy, and asking for files
    // during the outage does not drop that copy.
    assert.equal((await fetch(doc.versions['2.0.0']?.dist.tarball ?? '')).status, 200);
    const still = await fetch(`${gw.url}/npm/kept-lib`);
    assert.equal(still.status, 200);
    assert.match(still.headers.get('warning') ?? '', /^110 /);
    up.override('kept-lib', undefined);
    assert.deepEqual((await versions('kept-lib')).versions, ['2.0.0']);
    // Once filtered with the new data, that copy is the one served stale.
    clock.time += 10 * 60_000;
    up.override('kept-lib', { status: 503, body: 'maintenance' });
    const again = await fetch(`${gw.url}/npm/kept-lib`);
    assert.equal(again.status, 200);
    assert.match(again.headers.get('warning') ?? '', /^110 /);
    assert.deepEqual(Object.keys(((await again.json()) as { versions: object }).versions), ['2.0.0']);
  });

  void it('serves a file from the stale facts when the fresh ones were evicted before the document', async () => {
    const first = await fetch(`${gw.url}/npm/late-lib`);
    const doc = (await first.json()) as { versions: Record<string, { dist: { tarball: string } }> };
    // The filtered document is still fresh, its per-version facts are gone (evicted first), and
    // the uplink is down: rebuilding would drop the stale copy and fail.
    await gw.core.cache.delete('reg:v1:npm:late-lib|index');
    up.override('late-lib', { status: 503, body: 'maintenance' });
    try {
      assert.equal((await fetch(doc.versions['1.0.0']?.dist.tarball ?? '')).status, 200);
      assert.equal((await fetch(`${gw.url}/npm/late-lib`)).status, 200);
    } finally {
      up.override('late-lib', undefined);
    }
  });
});
