import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { cacheContract } from '#testing/contract-cache';
import { closedPort, isolatedRedis, requireRedis } from '#testing/services';
import {
  createRedisInvalidationBus,
  type InvalidationBus,
  type InvalidationMessage,
} from './invalidation-bus.ts';
import { createMemoryCache } from './memory-cache.ts';
import type { Cache } from './port.ts';
import { createRedisCache } from './redis-cache.ts';
import { createTieredCache } from './tiered-cache.ts';

const redis = requireRedis();

function tiered(url: string, prefix: string, defaultTtlMs?: number): { cache: Cache; bus: InvalidationBus } {
  const ttl = defaultTtlMs === undefined ? {} : { defaultTtlMs };
  const bus = createRedisInvalidationBus({ url, channel: `${prefix}invalidate` });
  const cache = createTieredCache({
    local: createMemoryCache({ maxBytes: 1 << 20, ...ttl }),
    remote: createRedisCache({ url, prefix: `${prefix}c:`, ...ttl }),
    bus,
  });
  return { cache, bus };
}

/** A contract fixture on its own key prefix of the test Redis. */
function redisFixture(label: string, build: (url: string, prefix: string, defaultTtlMs?: number) => Cache) {
  return async ({ defaultTtlMs }: { readonly defaultTtlMs?: number }) => {
    const space = isolatedRedis(redis.need(), label);
    const cache = build(space.url, space.prefix, defaultTtlMs);
    await cache.ping(2000);
    return {
      cache,
      async cleanup() {
        await cache.close();
        await space.cleanup();
      },
    };
  };
}

cacheContract(
  'redis',
  redisFixture('cache', (url, prefix, defaultTtlMs) =>
    createRedisCache({ url, prefix, ...(defaultTtlMs === undefined ? {} : { defaultTtlMs }) }),
  ),
  { testOptions: redis.options },
);

cacheContract(
  'tiered (memory + redis)',
  redisFixture('tiered', (url, prefix, defaultTtlMs) => tiered(url, prefix, defaultTtlMs).cache),
  { testOptions: redis.options },
);

void describe('redis cache specifics', redis.options, () => {
  void it('stores the TTL in Redis with millisecond precision (PX)', async () => {
    await using space = isolatedRedis(redis.need(), 'ttl');
    const cache = createRedisCache({ url: space.url, prefix: space.prefix });
    const raw = new Redis(space.url);
    try {
      await cache.ping();
      await cache.set('t', Buffer.from('v'), { ttlMs: 60_000 });
      await cache.set('p', Buffer.from('v'));
      const pttl = await raw.pttl(`${space.prefix}t`);
      assert.ok(pttl > 55_000 && pttl <= 60_000, `PTTL ${pttl}`);
      assert.equal(await raw.pttl(`${space.prefix}p`), -1);
    } finally {
      raw.disconnect();
      await cache.close();
    }
  });

  void it('degrades to counted misses when Redis is down, and fails ping and deletes fast', async () => {
    const url = `redis://127.0.0.1:${await closedPort()}`;
    const cache = createRedisCache({ url, prefix: 'down:', connectTimeoutMs: 200, commandTimeoutMs: 200 });
    try {
      const started = performance.now();
      await assert.rejects(cache.ping(300), { code: 'GW_ERR_CACHE_UNAVAILABLE' });
      assert.equal(await cache.get('k'), undefined);
      await cache.set('k', Buffer.from('v'));
      assert.equal(
        (await cache.getOrLoad('k', () => Promise.resolve(Buffer.from('origin')))).toString(),
        'origin',
      );
      await assert.rejects(cache.delete('k'), { code: 'GW_ERR_CACHE_UNAVAILABLE' });
      await assert.rejects(cache.deletePrefix('k'), { code: 'GW_ERR_CACHE_UNAVAILABLE' });
      const stats = cache.stats();
      assert.equal(stats.errors, 4, 'get, set, get and set of getOrLoad');
      assert.equal(stats.misses, 2);
      assert.ok(performance.now() - started < 2000, 'a dead Redis must not stall requests');
    } finally {
      await cache.close();
    }
  });

  void it('rejects URLs that are not Redis URLs', () => {
    assert.throws(() => createRedisCache({ url: 'http://127.0.0.1:6379', prefix: 'x:' }), TypeError);
  });
});

/** Resolves when replica `bus` has heard (and its cache has applied) the next message. */
const heard = (bus: InvalidationBus) =>
  new Promise<InvalidationMessage>((resolve) => {
    const stop = bus.subscribe((m) => {
      stop();
      resolve(m);
    });
  });

void describe('tiered cache across replicas', redis.options, () => {
  let space: ReturnType<typeof isolatedRedis>;
  let a: ReturnType<typeof tiered>;
  let b: ReturnType<typeof tiered>;
  before(async () => {
    space = isolatedRedis(redis.need(), 'replicas');
    a = tiered(space.url, space.prefix);
    b = tiered(space.url, space.prefix);
    await Promise.all([a.cache.ping(2000), b.cache.ping(2000)]);
  });
  after(async () => {
    await a?.cache.close();
    await b?.cache.close();
    await space?.cleanup();
  });

  void it('a delete on one replica removes the copy the other holds locally', async () => {
    const written = heard(b.bus);
    await a.cache.set('pkg:lodash', Buffer.from('v1'));
    await written;
    assert.equal((await b.cache.get('pkg:lodash'))?.toString(), 'v1');
    const localHits = b.cache.stats().entries;
    assert.equal(localHits, 1, 'b now holds a local copy');
    const message = heard(b.bus);
    assert.equal(await a.cache.delete('pkg:lodash'), true);
    assert.deepEqual({ ...(await message), origin: '' }, { op: 'delete', key: 'pkg:lodash', origin: '' });
    assert.equal(b.cache.stats().entries, 0);
    assert.equal(await b.cache.get('pkg:lodash'), undefined);
  });

  void it('a write on one replica replaces the stale local copy of the other', async () => {
    const written = heard(b.bus);
    await a.cache.set('meta:x', Buffer.from('old'));
    await written;
    assert.equal((await b.cache.get('meta:x'))?.toString(), 'old');
    const message = heard(b.bus);
    await a.cache.set('meta:x', Buffer.from('new'));
    await message;
    assert.equal((await b.cache.get('meta:x'))?.toString(), 'new');
  });

  void it('deletePrefix on one replica clears the prefix everywhere', async () => {
    for (const key of ['npm:a', 'npm:b', 'pypi:a']) {
      const written = heard(b.bus);
      await a.cache.set(key, Buffer.from(key));
      await written;
    }
    for (const key of ['npm:a', 'npm:b', 'pypi:a']) assert.ok((await b.cache.get(key)) !== undefined);
    const message = heard(b.bus);
    assert.equal(await a.cache.deletePrefix('npm:'), 2);
    await message;
    assert.equal(await b.cache.get('npm:a'), undefined);
    assert.equal(await b.cache.get('npm:b'), undefined);
    assert.equal((await b.cache.get('pypi:a'))?.toString(), 'pypi:a');
  });

  void it('ignores malformed messages on the channel', async () => {
    const written = heard(b.bus);
    await a.cache.set('keep', Buffer.from('k'));
    await written;
    assert.ok((await b.cache.get('keep')) !== undefined);
    const entries = b.cache.stats().entries;
    assert.ok(entries >= 1);
    const raw = new Redis(space.url);
    try {
      await raw.publish(`${space.prefix}invalidate`, '{"o":"x","p":"nuke","k":""}');
      await raw.publish(`${space.prefix}invalidate`, 'not json');
      // A valid message after the junk proves the junk was processed (in order) and ignored.
      const message = heard(b.bus);
      await raw.publish(
        `${space.prefix}invalidate`,
        JSON.stringify({ o: 'other', p: 'delete', k: 'unrelated' }),
      );
      await message;
    } finally {
      raw.disconnect();
    }
    assert.equal(b.cache.stats().entries, entries);
    assert.equal((await b.cache.get('keep'))?.toString(), 'k');
  });

  void it('drops every local copy when its subscription restarts, since messages may have been lost', async () => {
    const written = heard(b.bus);
    await a.cache.set('lost', Buffer.from('v1'));
    await written;
    assert.equal((await b.cache.get('lost'))?.toString(), 'v1');
    const raw = new Redis(space.url);
    try {
      // A change b never hears about, as if its message was lost in transit.
      await raw.set(`${space.prefix}c:lost`, 'v2');
      assert.equal((await b.cache.get('lost'))?.toString(), 'v1', 'b still serves its local copy');
      const clients = (await raw.client('LIST')) as string;
      const line = clients
        .split('\n')
        .find((l) => l.includes(`name=gatehouse-cache-bus-sub-${b.bus.origin}`));
      const id = /\bid=(\d+)/.exec(line ?? '')?.[1];
      assert.ok(id !== undefined, 'the subscriber connection is named after its bus');
      const reset = new Promise<void>((resolve) => {
        const stop = b.bus.onReset(() => {
          stop();
          resolve();
        });
      });
      await raw.client('KILL', 'ID', id);
      await reset;
    } finally {
      raw.disconnect();
    }
    assert.equal(b.cache.stats().entries, 0);
    assert.equal((await b.cache.get('lost'))?.toString(), 'v2');
  });
});
