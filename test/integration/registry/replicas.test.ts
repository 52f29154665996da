/**
 * Two replicas share the Redis tier: one fetches, the other serves the same filtered bytes
 * without asking the uplink; an invalidation on one reaches the other. Also the embedded
 * default: no configuration at all serves npm with the default policy.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { requireRedis } from '#testing/services';
import { type Gateway, startGateway } from './harness.ts';
import { type NpmUpstream, startNpmUpstream } from './npm-fixture.ts';

const redis = requireRedis();
const NOW = Date.now();
let work: string;
let up: NpmUpstream;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'registry-replicas-'));
  up = await startNpmUpstream(work, [
    { name: 'shared', versions: [{ version: '1.0.0', publishedAt: NOW - 10 * 86_400_000 }] },
  ]);
});
after(async () => {
  await up?.[Symbol.asyncDispose]();
  await rm(work, { recursive: true, force: true });
});

void describe('replicas sharing Redis', redis.options, () => {
  let a: Gateway;
  let b: Gateway;
  before(async () => {
    const config = {
      publicUrl: 'http://registry.example.test',
      npm: { uplinks: [{ name: 'public', url: up.url }] },
      pypi: { enabled: false },
    };
    const prefix = `ghtest-replicas-${process.pid}-${Date.now()}:`;
    a = await startGateway({ config, redisUrl: redis.need(), cachePrefix: prefix });
    b = await startGateway({ config, redisUrl: redis.need(), cachePrefix: prefix });
  });
  after(async () => {
    await a?.[Symbol.asyncDispose]();
    await b?.[Symbol.asyncDispose]();
  });

  void it('serves one fetch to both replicas and invalidates everywhere', async () => {
    const fetches = () => up.requests.filter((r) => r === 'GET /shared').length;
    const first = await fetch(`${a.url}/npm/shared`);
    const etag = first.headers.get('etag');
    const doc = (await first.json()) as { versions: Record<string, { dist: { tarball: string } }> };
    assert.equal(
      doc.versions['1.0.0']?.dist.tarball,
      'http://registry.example.test/npm/shared/-/shared-1.0.0.tgz',
    );
    const second = await fetch(`${b.url}/npm/shared`);
    assert.equal(second.headers.get('etag'), etag, 'the same bytes on both replicas');
    assert.equal(fetches(), 1);
    assert.ok((await a.door.invalidate('npm', 'shared')) > 0);
    await new Promise<void>((resolve) => {
      // Pub/sub delivery to the other replica is asynchronous; poll its cache briefly.
      const deadline = Date.now() + 2000;
      const tick = async () => {
        const r = await fetch(`${b.url}/npm/shared`);
        await r.arrayBuffer();
        if (fetches() >= 2 || Date.now() > deadline) resolve();
        else setTimeout(() => void tick(), 50);
      };
      void tick();
    });
    assert.equal(fetches(), 2, 'replica B fetched again after the invalidation');
  });
});

void describe('embedded default', () => {
  void it('serves npm with a two-day minimum age and a fail-open vulnerability rule when nothing is configured', async () => {
    await using gw = await startGateway({ config: {} });
    assert.deepEqual(
      gw.door
        .policy()
        .current()
        .rulesFor()
        .map((r) => r.id),
      ['min-age', 'vulnerabilities'],
    );
    const ping = await fetch(`${gw.url}/npm/-/ping`);
    assert.equal(ping.status, 200);
    const d = await gw.door
      .policy()
      .current()
      .evaluate({ ecosystem: 'npm', name: 'x', version: '1.0.0', publishedAt: Date.now() - 3 * 86_400_000 });
    assert.equal(d.outcome, 'warn');
    assert.match(d.reason, /vulnerability database is empty \(fail-open\)/);
    const fresh = await gw.door
      .policy()
      .current()
      .evaluate({ ecosystem: 'npm', name: 'x', version: '1.0.0', publishedAt: Date.now() - 86_400_000 });
    assert.equal(fresh.allowed, false);
  });
});
