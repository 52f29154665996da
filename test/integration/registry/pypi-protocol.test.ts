/**
 * The PyPI side of the door on real sockets: PEP 691 negotiation, PEP 503 redirects, preserved
 * attributes, upload times from the JSON API for HTML-only uplinks, the JSON API, sha256
 * verification, bad input, policy reload and the per-registry metrics.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ADMIN_TOKEN,
  ageRuleEscapes,
  type Gateway,
  registryConfig,
  startGateway,
  withPolicy,
} from './harness.ts';
import { type PypiUpstream, startPypiUpstream } from './pypi-fixture.ts';

const DAY = 86_400_000;
const NOW = Date.now();
let work: string;
let up: PypiUpstream;
let gw: Gateway;
let pypiRaw: Record<string, unknown>;
const JSON_TYPE = 'application/vnd.pypi.simple.v1+json';

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'registry-pypi-protocol-'));
  up = await startPypiUpstream(work, {
    'fresh-py': [
      { version: '1.0', publishedAt: NOW - 30 * DAY },
      { version: '1.1', publishedAt: NOW - 3_600_000 },
    ],
    'html-only': [{ version: '3.0', publishedAt: NOW - 10 * DAY }],
    'both-apis': [{ version: '2.0', publishedAt: NOW - 10 * DAY }],
    'late-wheel': [{ version: '1.0', publishedAt: NOW - 30 * DAY }],
  });
  pypiRaw = { uplinks: [{ name: 'pypi', url: `${up.url}/simple/`, retries: 0 }] };
  gw = await startGateway({ config: { npm: { enabled: false }, pypi: pypiRaw } });
});

after(async () => {
  await gw?.[Symbol.asyncDispose]();
  await up?.[Symbol.asyncDispose]();
  await rm(work, { recursive: true, force: true });
});

const get = (path: string, headers: Record<string, string> = {}) =>
  fetch(`${gw.url}${path}`, { headers, redirect: 'manual' });

interface JsonPage {
  versions: string[];
  files: {
    filename: string;
    url: string;
    hashes: { sha256: string };
    yanked?: unknown;
    'upload-time'?: string;
    'requires-python'?: string;
    'core-metadata'?: unknown;
  }[];
}

/** A PEP 691 file entry uploaded a month ago (its bytes are never asked for). */
const monthOld = (name: string) => ({
  filename: name,
  url: `../../files/${name}`,
  hashes: { sha256: 'a'.repeat(64) },
  'upload-time': new Date(NOW - 30 * DAY).toISOString(),
});

void describe('PyPI simple API through the door', () => {
  void it('lets a young version through by exclusion, per-registry rule exclusion and override', async () => {
    const young = async () => {
      const page = (await (await get('/pypi/simple/fresh-py/', { accept: JSON_TYPE })).json()) as JsonPage;
      return page.files.filter((f) => f.filename.includes('1.1'));
    };
    const wheel = '/pypi/files/fresh-py/fresh_py-1.1-py3-none-any.whl';
    const config = { npm: { enabled: false }, pypi: pypiRaw };
    // PEP 503 names: the pattern matches "Fresh_Py" and "fresh-py" alike.
    await ageRuleEscapes(gw, config, { registry: 'pypi', pattern: 'Fresh_*' }, async (label) => {
      const files = await young();
      assert.ok(files.length > 0 && files.every((f) => f.yanked === undefined || f.yanked === false), label);
      assert.equal((await get(wheel)).status, 200, label);
    });
    assert.ok((await young()).every((f) => f.yanked !== undefined && f.yanked !== false));
    assert.equal((await get(wheel)).status, 403);
  });

  void it('answers a request body it cannot parse as the client error it is, not 500', async () => {
    for (const [path, method] of [
      ['/pypi/simple/demo-pkg/', 'POST'],
      ['/pypi/', 'POST'],
      ['/npm/-/v1/login', 'POST'],
    ] as const) {
      const res = await fetch(`${gw.url}${path}`, {
        method,
        headers: { 'content-type': 'application/json' },
        body: '{bad',
      });
      assert.ok(res.status >= 400 && res.status < 500, `${method} ${path}: ${res.status}`);
      assert.doesNotMatch(await res.text(), /GW_ERR_INTERNAL|Internal error/, `${method} ${path}`);
    }
  });

  void it('negotiates PEP 691 JSON, PEP 503 HTML, and answers 406 otherwise', async () => {
    const json = await get('/pypi/simple/fresh-py/', { accept: JSON_TYPE });
    assert.equal(json.headers.get('content-type'), JSON_TYPE);
    const html = await get('/pypi/simple/fresh-py/', { accept: 'text/html' });
    assert.match(html.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(await html.text(), /data-requires-python="&gt;=3.8"/);
    const none = await get('/pypi/simple/fresh-py/', { accept: 'application/json' });
    assert.equal(none.status, 406);
  });

  void it('redirects to the normalized name with a trailing slash', async () => {
    const r = await get('/pypi/simple/Fresh_Py');
    assert.equal(r.status, 301);
    assert.equal(r.headers.get('location'), '/pypi/simple/fresh-py/');
  });

  void it('keeps hashes, requires-python, upload-time and core metadata, and rewrites URLs', async () => {
    const page = (await (await get('/pypi/simple/fresh-py/', { accept: JSON_TYPE })).json()) as JsonPage;
    const wheel = page.files.find((f) => f.filename === 'fresh_py-1.0-py3-none-any.whl');
    const original = up.files.get('fresh_py-1.0-py3-none-any.whl');
    assert.equal(
      wheel?.hashes.sha256,
      createHash('sha256')
        .update(original?.bytes ?? Buffer.alloc(0))
        .digest('hex'),
    );
    assert.equal(wheel?.url, `${gw.url}/pypi/files/fresh-py/fresh_py-1.0-py3-none-any.whl`);
    assert.equal(wheel?.['requires-python'], '>=3.8');
    assert.ok(wheel?.['upload-time'] !== undefined);
    assert.ok(typeof wheel?.['core-metadata'] === 'object');
    const young = page.files.filter((f) => f.filename.includes('1.1'));
    assert.ok(
      young.length === 2 &&
        young.every((f) => typeof f.yanked === 'string' && /minimum age/.test(f.yanked as string)),
    );
  });

  void it('takes upload times from the JSON API when the uplink only speaks HTML', async () => {
    const file = up.files.get('html_only-3.0-py3-none-any.whl');
    const sha = createHash('sha256')
      .update(file?.bytes ?? Buffer.alloc(0))
      .digest('hex');
    up.override('/simple/html-only/', {
      status: 200,
      headers: { 'content-type': 'text/html' },
      body: `<!DOCTYPE html><html><body><a href="../../files/html_only-3.0-py3-none-any.whl#sha256=${sha}" data-requires-python="&gt;=3.8">html_only-3.0-py3-none-any.whl</a></body></html>`,
    });
    const page = (await (await get('/pypi/simple/html-only/', { accept: JSON_TYPE })).json()) as JsonPage;
    assert.equal(page.files[0]?.yanked, undefined, 'ten days old: allowed');
    assert.equal(page.files[0]?.['upload-time'], new Date(NOW - 10 * DAY).toISOString());
    const dl = await get('/pypi/files/html-only/html_only-3.0-py3-none-any.whl');
    assert.equal(dl.status, 200);
    assert.equal(
      createHash('sha256')
        .update(Buffer.from(await dl.arrayBuffer()))
        .digest('hex'),
      sha,
    );
  });

  void it('dates a file the JSON API does not know yet by when the door first saw it, not by its release', async () => {
    // An HTML-only uplink lists a wheel just added to an old release; the JSON API (read
    // separately, cached or lagging) still knows only the old sdist. The release counted as old.
    const files = [...up.files.values()].filter((f) => f.filename.startsWith('late'));
    const wheel = files.find((f) => f.filename.endsWith('.whl'));
    const sdist = files.find((f) => f.filename.endsWith('.tar.gz'));
    assert.ok(wheel !== undefined && sdist !== undefined);
    const link = (f: typeof wheel) =>
      `<a href="../../files/${f.filename}#sha256=${createHash('sha256').update(f.bytes).digest('hex')}">${f.filename}</a>`;
    up.override('/simple/late-wheel/', {
      status: 200,
      headers: { 'content-type': 'text/html' },
      body: `<!DOCTYPE html><html><body>${link(sdist)}${link(wheel)}</body></html>`,
    });
    up.override('/pypi/late-wheel/json', {
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        info: { name: 'late-wheel', version: '1.0' },
        releases: {
          '1.0': [{ filename: sdist.filename, upload_time_iso_8601: new Date(NOW - 30 * DAY).toISOString() }],
        },
      }),
    });
    const page = (await (await get('/pypi/simple/late-wheel/', { accept: JSON_TYPE })).json()) as JsonPage;
    assert.equal(page.files.length, 2);
    for (const f of page.files) assert.match(String(f.yanked), /minimum age/, f.filename);
    assert.equal((await get(`/pypi/files/late-wheel/${wheel.filename}`)).status, 403);
  });

  void it('judges a file by its PEP 440 normalized version, however its name spells it', async () => {
    // A legacy sdist spells its version `1.0.RC1`; PyPI, and so the OSV data, call the release
    // `1.0rc1`. An advisory listing only that version did not match the file's spelling.
    const osv = join(work, 'osv-spelled');
    await mkdir(osv, { recursive: true });
    await writeFile(
      join(osv, 'PYSEC-2026-77.json'),
      JSON.stringify({
        id: 'PYSEC-2026-77',
        modified: '2026-01-01T00:00:00Z',
        summary: 'Backdoor in spelled',
        severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }],
        affected: [{ package: { ecosystem: 'PyPI', name: 'spelled' }, versions: ['1.0rc1'] }],
      }),
    );
    await gw.door.vulndb().import(osv);
    up.override('/simple/spelled/', {
      status: 200,
      headers: { 'content-type': JSON_TYPE },
      body: JSON.stringify({
        meta: { 'api-version': '1.1' },
        name: 'spelled',
        files: [monthOld('spelled-1.0.RC1.tar.gz'), monthOld('spelled-0.9.tar.gz')],
      }),
    });
    await withPolicy(
      gw,
      { npm: { enabled: false }, pypi: pypiRaw },
      { rules: [{ id: 'vulns', type: 'vulnerability' }] },
      async () => {
        const page = (await (await get('/pypi/simple/spelled/', { accept: JSON_TYPE })).json()) as JsonPage;
        const yanked = Object.fromEntries(page.files.map((f) => [f.filename, f.yanked]));
        assert.match(String(yanked['spelled-1.0.RC1.tar.gz']), /PYSEC-2026-77/);
        assert.equal(yanked['spelled-0.9.tar.gz'], undefined);
        assert.deepEqual(page.versions.toSorted(), ['0.9', '1.0rc1']);
        assert.equal((await get('/pypi/files/spelled/spelled-1.0.RC1.tar.gz')).status, 403);
        // `policy test` answers as the download does, however the version is spelled.
        for (const version of ['1.0.RC1', '1.0rc1']) {
          const res = await fetch(`${gw.url}/api/registry/policy/test`, {
            method: 'POST',
            headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
            body: JSON.stringify({ ecosystem: 'pypi', name: 'Spelled', version }),
          });
          const answer = (await res.json()) as {
            found: boolean;
            decision: { allowed: boolean; reason: string };
          };
          assert.equal(answer.found, true, version);
          assert.equal(answer.decision.allowed, false, version);
          assert.match(answer.decision.reason, /PYSEC-2026-77/, version);
        }
      },
    );
  });

  void it('filters the JSON API and moves info.version to the newest allowed release', async () => {
    const doc = (await (await get('/pypi/pypi/fresh-py/json')).json()) as {
      info: { version: string };
      releases: Record<string, { url: string }[]>;
      urls: { url: string }[];
    };
    assert.deepEqual(Object.keys(doc.releases), ['1.0']);
    assert.equal(doc.info.version, '1.0');
    assert.ok(
      doc.urls.length > 0 && doc.urls.every((u) => u.url.startsWith(`${gw.url}/pypi/files/fresh-py/`)),
    );
  });

  void it('answers concurrent cold misses of the simple page and the JSON API, each with its own document', async () => {
    const [page, api] = await Promise.all([
      get('/pypi/simple/both-apis/', { accept: JSON_TYPE }),
      get('/pypi/pypi/both-apis/json'),
    ]);
    assert.equal(page.status, 200);
    assert.deepEqual(((await page.json()) as JsonPage).versions, ['2.0']);
    assert.equal(api.status, 200);
    assert.equal(((await api.json()) as { info: { version: string } }).info.version, '2.0');
  });

  void it('refuses a refused release file with 403 and a reason phrase pip prints', async () => {
    const r = await get('/pypi/files/fresh-py/fresh_py-1.1-py3-none-any.whl');
    assert.equal(r.status, 403);
    assert.match(r.statusText, /minimum age is 2d/);
    assert.match(await r.text(), /GW_ERR_POLICY_DENIED/);
  });

  void it('judges a release by its newest file: a wheel added to an old release hides the release', async () => {
    // The attack: a new (malicious) file uploaded into a release old enough to pass the minimum age.
    const wheel = up.files.get('fresh_py-1.0-py3-none-any.whl') as { uploadTime: string };
    const original = wheel.uploadTime;
    wheel.uploadTime = new Date(NOW - 3_600_000).toISOString();
    await gw.door.invalidate('pypi', 'fresh-py');
    try {
      const page = (await (await get('/pypi/simple/fresh-py/', { accept: JSON_TYPE })).json()) as JsonPage;
      const release = page.files.filter((f) => /^fresh[-_]py-1\.0[-.]/.test(f.filename));
      assert.ok(release.length >= 2, JSON.stringify(page.files.map((f) => f.filename)));
      for (const f of release) assert.match(String(f.yanked), /minimum age is 2d/, f.filename);
      for (const f of release) {
        const r = await get(`/pypi/files/fresh-py/${f.filename}`);
        assert.equal(r.status, 403, f.filename);
        await r.arrayBuffer();
      }
    } finally {
      wheel.uploadTime = original;
      await gw.door.invalidate('pypi', 'fresh-py');
    }
    const wheelAgain = await get('/pypi/files/fresh-py/fresh_py-1.0-py3-none-any.whl');
    assert.equal(wheelAgain.status, 200);
    await wheelAgain.arrayBuffer();
  });

  void it('answers a file named like an Object property as not there, without judging a version', async () => {
    for (const name of ['constructor', 'toString', 'hasOwnProperty']) {
      const r = await get(`/pypi/files/fresh-py/${name}`);
      assert.equal(r.status, 404, name);
      await r.arrayBuffer();
    }
  });

  void it('refuses a download whose sha256 does not match (502) and keeps it out of the cache', async () => {
    const name = [...up.files.keys()].find((n) => /^fresh.py-1\.0\.tar\.gz$/.test(n)) ?? '';
    const f = up.files.get(name);
    assert.ok(f !== undefined);
    const good = f.bytes;
    up.files.set(name, {
      ...f,
      bytes: Buffer.concat([good.subarray(0, -1), Buffer.from([good.at(-1) === 0 ? 1 : 0])]),
    });
    // Checked whole before its first byte goes out: pip gets a status, not a dropped connection.
    const refused = await get(`/pypi/files/fresh-py/${name}`);
    assert.equal(refused.status, 502);
    assert.match(await refused.text(), /GW_ERR_REGISTRY_INTEGRITY_MISMATCH/);
    up.files.set(name, f);
    const ok = await get(`/pypi/files/fresh-py/${name}`);
    assert.deepEqual(Buffer.from(await ok.arrayBuffer()), good);
  });

  void it('answers malformed upstream pages and invalid names with clear errors', async () => {
    up.override('/simple/broken/', {
      status: 200,
      headers: { 'content-type': JSON_TYPE },
      body: '{"files": 7}',
    });
    const bad = await get('/pypi/simple/broken/', { accept: JSON_TYPE });
    assert.equal(bad.status, 502);
    assert.match(await bad.text(), /GW_ERR_REGISTRY_UPSTREAM_INVALID/);
    for (const path of [
      '/pypi/simple/-bad-/',
      '/pypi/simple/a%2fb/',
      '/pypi/files/fresh-py/..%2f..%2fetc%2fpasswd',
    ]) {
      const r = await get(path);
      assert.equal(r.status, 400, path);
    }
  });

  void it('swaps the policy on reload and exports per-registry metrics', async () => {
    gw.section.set(
      registryConfig({
        npm: { enabled: false },
        pypi: pypiRaw,
        policy: { rules: [{ id: 'min-age', type: 'minimumAge', minimumAge: { age: '1m' } }] },
      }),
    );
    const page = (await (await get('/pypi/simple/fresh-py/', { accept: JSON_TYPE })).json()) as JsonPage;
    assert.ok(
      page.files.every((f) => f.yanked === undefined || f.yanked === false),
      'one hour old passes a one-minute minimum',
    );
    gw.section.set(
      registryConfig({
        npm: { enabled: false },
        pypi: pypiRaw,
        policy: {
          rules: [{ id: 'x', type: 'denyList', list: { entries: [{ name: 'fresh-py', versions: '>=a' }] } }],
        },
      }),
    );
    assert.notEqual(
      gw.door.policy().current().rulesFor()[0]?.id,
      'x',
      'an invalid policy keeps the last good one',
    );
    const metrics = await (await get('/metrics')).text();
    assert.match(
      metrics,
      /gatehouse_registry_decisions_total\{registry="pypi",rule="min-age",outcome="deny"\} \d+/,
    );
    assert.match(
      metrics,
      /gatehouse_registry_cache_total\{registry="pypi",kind="metadata",result="hit"\} \d+/,
    );
    assert.match(
      metrics,
      /gatehouse_registry_uplink_duration_seconds_count\{uplink="pypi",outcome="200"\} \d+/,
    );
  });
});
