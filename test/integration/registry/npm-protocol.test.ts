/**
 * The npm registry protocol of the door on real sockets: packument filtering and forms,
 * scoped names, ETags, compression, coalescing, stale-on-error, tarball integrity and Range,
 * and every kind of bad input (names, upstream JSON, sizes, failures).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { ageRuleEscapes, type Gateway, startGateway, TestClock } from './harness.ts';
import { type NpmUpstream, startNpmUpstream } from './npm-fixture.ts';

const DAY = 86_400_000;
const NOW = Date.now();
const clock = new TestClock(NOW);
let work: string;
let up: NpmUpstream;
let gw: Gateway;
let config: Record<string, unknown>;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'registry-npm-protocol-'));
  up = await startNpmUpstream(work, [
    {
      name: '@scope/tool',
      versions: [
        { version: '1.0.0', publishedAt: NOW - 20 * DAY },
        { version: '1.1.0', publishedAt: NOW - 10 * DAY },
        { version: '2.0.0-beta.1', publishedAt: NOW - 5 * DAY },
        { version: '2.0.0', publishedAt: NOW - 3_600_000 },
      ],
    },
    { name: 'plain', versions: [{ version: '1.0.0', publishedAt: NOW - 20 * DAY }] },
  ]);
  const tool = up.packuments.get('@scope/tool') as { 'dist-tags': Record<string, string> };
  tool['dist-tags']['next'] = '2.0.0-beta.1';
  config = {
    npm: {
      uplinks: [{ name: 'public', url: up.url, retries: 0, breakerFailures: 3, breakerCooldown: '30s' }],
    },
    pypi: { enabled: false },
    cache: { metadataTtl: '5m', cutoffStep: '1m', maxMetadataSize: '1MiB' },
    policy: { rules: [{ id: 'min-age', type: 'minimumAge', minimumAge: { age: '2d' } }] },
  };
  gw = await startGateway({ clock, config });
});

after(async () => {
  await gw?.[Symbol.asyncDispose]();
  await up?.[Symbol.asyncDispose]();
  await rm(work, { recursive: true, force: true });
});

const get = (path: string, headers: Record<string, string> = {}) => fetch(`${gw.url}${path}`, { headers });
const ABBR = { accept: 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*' };
const count = (path: string) => up.requests.filter((r) => r === `GET ${path}`).length;

void describe('npm packuments through the door', () => {
  void it('lets a young version through by exclusion, per-registry rule exclusion and override', async () => {
    const versions = async () =>
      Object.keys(((await (await get('/npm/@scope/tool', ABBR)).json()) as { versions: object }).versions);
    await ageRuleEscapes(gw, config, { registry: 'public', pattern: '@scope/*' }, async (label) => {
      assert.ok((await versions()).includes('2.0.0'), label);
      assert.equal((await get('/npm/@scope/tool/-/tool-2.0.0.tgz')).status, 200, label);
    });
    assert.ok(!(await versions()).includes('2.0.0'));
    assert.equal((await get('/npm/@scope/tool/-/tool-2.0.0.tgz')).status, 403);
  });

  void it('filters versions, recomputes dist-tags and keeps integrity and signatures', async () => {
    const res = await get('/npm/@scope%2ftool');
    assert.equal(res.status, 200);
    const doc = (await res.json()) as {
      versions: Record<string, { dist: Record<string, unknown> }>;
      'dist-tags': Record<string, string>;
      time: Record<string, string>;
    };
    assert.deepEqual(Object.keys(doc.versions), ['1.0.0', '1.1.0', '2.0.0-beta.1']);
    assert.deepEqual(doc['dist-tags'], { latest: '1.1.0', next: '2.0.0-beta.1' });
    assert.equal(doc.time['2.0.0'], undefined);
    const upstream = up.packuments.get('@scope/tool') as {
      versions: Record<string, { dist: Record<string, unknown> }>;
    };
    const dist = doc.versions['1.1.0']?.dist ?? {};
    assert.equal(dist['integrity'], upstream.versions['1.1.0']?.dist['integrity']);
    assert.deepEqual(dist['signatures'], upstream.versions['1.1.0']?.dist['signatures']);
    assert.equal(dist['tarball'], `${gw.url}/npm/@scope/tool/-/tool-1.1.0.tgz`);
    assert.match(res.headers.get('npm-notice') ?? '', /tool@2\.0\.0" was published .* allowed from/);
  });

  void it('answers the abbreviated form with `time`, for @scope/name and @scope%2fname alike', async () => {
    const a = await get('/npm/@scope/tool', ABBR);
    const b = await get('/npm/@scope%2ftool', ABBR);
    assert.equal(a.headers.get('content-type'), 'application/vnd.npm.install-v1+json');
    const doc = (await a.json()) as Record<string, unknown> & {
      versions: Record<string, Record<string, unknown>>;
      time: Record<string, string>;
    };
    assert.deepEqual(await b.json(), doc);
    assert.equal(doc['readme'], undefined);
    assert.ok(doc.time['1.1.0'] !== undefined, 'abbreviated metadata carries time for age gates');
    assert.deepEqual(Object.keys(doc.versions['1.0.0'] ?? {}).sort(), [
      'dependencies',
      'dist',
      'name',
      'version',
    ]);
  });

  void it('serves strong ETags, 304 on If-None-Match, and identical bytes in gzip and brotli', async () => {
    const plain = await get('/npm/plain', { 'accept-encoding': 'identity' });
    const etag = plain.headers.get('etag') ?? '';
    assert.match(etag, /^"[A-Za-z0-9_-]+"$/);
    const body = Buffer.from(await plain.arrayBuffer());
    const again = await get('/npm/plain', { 'if-none-match': etag });
    assert.equal(again.status, 304);
    const { request } = await import('undici');
    for (const enc of ['gzip', 'br'] as const) {
      const r = await request(`${gw.url}/npm/plain`, { headers: { 'accept-encoding': enc } });
      assert.equal(r.headers['content-encoding'], enc);
      const raw = Buffer.from(await r.body.arrayBuffer());
      assert.deepEqual(enc === 'gzip' ? gunzipSync(raw) : brotliDecompressSync(raw), body);
      const revalidate = await get('/npm/plain', {
        'if-none-match': String(r.headers['etag']),
        'accept-encoding': enc,
      });
      assert.equal(revalidate.status, 304);
    }
  });

  void it('coalesces concurrent misses into one upstream request', async () => {
    await gw.door.invalidate('npm', 'plain');
    const before = count('/plain');
    const all = await Promise.all(Array.from({ length: 25 }, () => get('/npm/plain')));
    assert.ok(all.every((r) => r.status === 200));
    assert.equal(count('/plain') - before, 1);
  });

  void it('serves stale metadata with a Warning when the uplink fails, and never caches bad JSON', async () => {
    await get('/npm/plain');
    clock.time += 10 * 60_000;
    up.override('plain', { status: 503, body: 'down' });
    const stale = await get('/npm/plain');
    assert.equal(stale.status, 200);
    assert.match(stale.headers.get('warning') ?? '', /^110 gatehouse "Response is stale/);
    up.override('plain', {
      status: 200,
      body: '{"name":"plain","versions":',
      headers: { 'content-type': 'application/json' },
    });
    clock.time += 10 * 60_000;
    await gw.door.invalidate('npm', 'plain');
    const bad = await get('/npm/plain');
    assert.equal(bad.status, 502);
    assert.equal(((await bad.json()) as { code: string }).code, 'GW_ERR_REGISTRY_UPSTREAM_INVALID');
    up.override('plain', undefined);
    const good = await get('/npm/plain');
    assert.equal(good.status, 200, 'the malformed answer was not cached');
    // verify() writes queued audit events first, so the query sees them.
    await gw.core.audit.verify();
    const events = await gw.core.audit.query({ action: 'registry.upstream.invalid' });
    assert.ok(events.events.length > 0);
  });

  void it('refuses names with traversal or invalid characters without asking the uplink', async () => {
    const before = up.requests.length;
    for (const path of [
      '/npm/..%2f..%2fetc%2fpasswd',
      '/npm/@scope/..',
      '/npm/foo%00bar',
      '/npm/.hidden',
      '/npm/a%20b',
      `/npm/${'x'.repeat(215)}`,
    ]) {
      const r = await get(path);
      assert.equal(r.status, 400, path);
      assert.equal(((await r.json()) as { code: string }).code, 'GW_ERR_REGISTRY_NAME_INVALID', path);
    }
    // The router resolves a bare `..` segment before any route matches: nothing is served.
    assert.equal((await get('/npm/%2e%2e')).status, 404);
    assert.equal(up.requests.length, before);
  });

  void it('refuses an enormous packument and does not cache it', async () => {
    up.override('huge', { status: 200, body: JSON.stringify({ name: 'huge', readme: 'x'.repeat(2 << 20) }) });
    const r = await get('/npm/huge');
    assert.equal(r.status, 502);
    assert.equal(((await r.json()) as { code: string }).code, 'GW_ERR_REGISTRY_UPSTREAM_TOO_LARGE');
    up.override('huge', undefined);
  });
});

void describe('npm tarballs through the door', () => {
  const sha = (b: Buffer) => createHash('sha512').update(b).digest('hex');

  void it('streams a verified tarball, then serves Range requests from the cache', async () => {
    const original = up.tarballs.get('@scope/tool/-/tool-1.1.0.tgz') as Buffer;
    const r = await get('/npm/@scope/tool/-/tool-1.1.0.tgz');
    assert.equal(r.status, 200);
    assert.equal(sha(Buffer.from(await r.arrayBuffer())), sha(original));
    const part = await get('/npm/@scope/tool/-/tool-1.1.0.tgz', { range: 'bytes=10-19' });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 10-19/${original.length}`);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), original.subarray(10, 20));
    const bad = await get('/npm/@scope/tool/-/tool-1.1.0.tgz', { range: `bytes=${original.length + 5}-` });
    assert.equal(bad.status, 416);
  });

  void it('refuses a blocked version even when asked for directly', async () => {
    const r = await get('/npm/@scope/tool/-/tool-2.0.0.tgz');
    assert.equal(r.status, 403);
    assert.match(r.headers.get('npm-notice') ?? '', /minimum age is 2d/);
    assert.equal(((await r.json()) as { code: string }).code, 'GW_ERR_POLICY_DENIED');
  });

  void it('serves version documents and tarballs under @scope%2fname too, and refuses there what it refuses', async () => {
    const original = up.tarballs.get('@scope/tool/-/tool-1.1.0.tgz') as Buffer;
    for (const scoped of ['@scope%2ftool', '@scope%2Ftool']) {
      const file = await get(`/npm/${scoped}/-/tool-1.1.0.tgz`);
      assert.equal(file.status, 200, scoped);
      assert.equal(sha(Buffer.from(await file.arrayBuffer())), sha(original));
      const refused = await get(`/npm/${scoped}/-/tool-2.0.0.tgz`);
      assert.equal(refused.status, 403, scoped);
      assert.equal(((await refused.json()) as { code: string }).code, 'GW_ERR_POLICY_DENIED');
      const doc = await get(`/npm/${scoped}/1.1.0`);
      assert.equal(doc.status, 200, scoped);
      assert.equal(((await doc.json()) as { version: string }).version, '1.1.0');
      const latest = await get(`/npm/${scoped}/latest`);
      assert.equal(((await latest.json()) as { version: string }).version, '1.1.0');
    }
    const other = await get('/npm/@scope%2ftool/x/tool-1.1.0.tgz');
    assert.equal(other.status, 404);
    await other.arrayBuffer();
  });

  void it('answers a tag, version or file named like an Object property as not there', async () => {
    for (const path of [
      '/npm/plain/constructor',
      '/npm/plain/toString',
      '/npm/plain/-/plain-constructor.tgz',
    ]) {
      const r = await get(path);
      assert.equal(r.status, 404, path);
      await r.arrayBuffer();
    }
  });

  void it('refuses npm audit and publish before reading the body, with 405 (npm retries a 5xx)', async () => {
    const post = (path: string, body: string | Buffer, headers: Record<string, string> = {}) =>
      fetch(`${gw.url}/npm/-/npm/v1/security/${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });
    for (const [label, res] of [
      ['empty object', await post('advisories/bulk', '{}')],
      ['not JSON', await post('audits/quick', '{bad')],
      [
        'gzipped, as npm sends it',
        await post('advisories/bulk', gzipSync('{"a":["1.0.0"]}'), { 'content-encoding': 'gzip' }),
      ],
      ['2 MB', await post('advisories/bulk', `{"x":"${'a'.repeat(2 << 20)}"}`)],
    ] as const) {
      assert.equal(res.status, 405, label);
      const doc = (await res.json()) as { error?: string };
      assert.match(JSON.stringify(doc), /npm audit is not served here/, label);
    }
    const publish = await fetch(`${gw.url}/npm/plain`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: '{bad',
    });
    assert.equal(publish.status, 405);
    assert.equal(publish.headers.get('allow'), 'GET, HEAD');
    assert.match(await publish.text(), /Publishing through the Gatehouse proxy is not supported/);
  });

  void it('refuses a small file that does not match its integrity with 502, and does not cache it', async () => {
    const path = '@scope/tool/-/tool-1.0.0.tgz';
    const original = up.tarballs.get(path) as Buffer;
    const tampered = Buffer.from(original);
    tampered[tampered.length - 1] = (tampered.at(-1) ?? 0) ^ 0xff;
    up.tarballs.set(path, tampered);
    // The file is checked whole before its first (only) chunk goes out: an error status, not a
    // dropped connection (large files are aborted mid-body: broken-downloads.test.ts).
    const refused = await get(`/npm/${path}`);
    assert.equal(refused.status, 502);
    assert.equal(((await refused.json()) as { code?: string }).code, 'GW_ERR_REGISTRY_INTEGRITY_MISMATCH');
    up.tarballs.set(path, original);
    // At once: the failed download is not joined, even while its clean-up runs.
    const r = await get(`/npm/${path}`);
    assert.equal(r.status, 200);
    assert.equal(sha(Buffer.from(await r.arrayBuffer())), sha(original));
    const events = await gw.core.audit.query({ action: 'registry.integrity.mismatch' });
    assert.equal(events.events.length, 1);
  });

  void it('refuses to fetch a file the metadata points outside the uplink (no SSRF)', async () => {
    const doc = up.packuments.get('plain') as { versions: Record<string, { dist: { tarball: string } }> };
    const original = doc.versions['1.0.0']?.dist.tarball ?? '';
    (doc.versions['1.0.0'] as { dist: { tarball: string } }).dist.tarball =
      'http://169.254.169.254/latest/meta-data/plain-1.0.0.tgz';
    await gw.door.invalidate('npm', 'plain');
    const r = await get('/npm/plain/-/plain-1.0.0.tgz');
    assert.equal(r.status, 502);
    assert.match(((await r.json()) as { error: string }).error, /outside uplink "public"/);
    (doc.versions['1.0.0'] as { dist: { tarball: string } }).dist.tarball = original;
    await gw.door.invalidate('npm', 'plain');
  });

  void it('rebuilds the version index when it was evicted before the metadata', async () => {
    await get('/npm/plain');
    await gw.core.cache.delete('reg:v1:npm:plain|index');
    const r = await get('/npm/plain/-/plain-1.0.0.tgz');
    assert.equal(r.status, 200);
    await r.arrayBuffer();
  });

  void it('opens the circuit breaker after consecutive uplink failures', async () => {
    up.override('broken', { status: 500, body: 'no' });
    const before = count('/broken');
    for (let i = 0; i < 3; i++) assert.equal((await get('/npm/broken')).status, 502);
    const fast = await get('/npm/broken');
    assert.equal(fast.status, 502);
    assert.match(((await fast.json()) as { error: string }).error, /circuit breaker open/);
    assert.equal(count('/broken') - before, 3, 'the open breaker sent nothing upstream');
    clock.time += 31_000;
    up.override('broken', undefined);
    assert.equal((await get('/npm/plain')).status, 200, 'a half-open probe succeeds and closes the breaker');
  });
});
