/**
 * The one contract suite of the Cache port, run against the memory cache, the Redis cache and
 * the tiered cache on the real Redis server.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Cache } from '#core/cache';

/** One empty cache for a test. */
export interface CacheFixture {
  readonly cache: Cache;
  /**
   * Moves the cache's clock forward (memory caches with an injected clock); undefined where
   * time is the server's, in which case TTL tests check only what holds at once.
   */
  readonly advance?: (ms: number) => void;
  cleanup(): Promise<void>;
}

/** Options for one implementation. */
export interface CacheContractOptions {
  readonly testOptions?: { readonly skip?: string };
}

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Starts `callers` concurrent getOrLoad calls on one key whose load waits for `settle`; returns
 * their promises and how many times the load ran once they are settled.
 */
async function concurrentLoads(
  cache: Cache,
  key: string,
  callers: number,
  settle: (gate: Deferred<Buffer>) => void,
): Promise<{ outcomes: PromiseSettledResult<Buffer>[]; loads: number; load: () => Promise<Buffer> }> {
  const gate = deferred<Buffer>();
  // The gate may reject before a slow backend's lookup lets the load start.
  gate.promise.catch(() => undefined);
  let loads = 0;
  const load = () => {
    loads += 1;
    return gate.promise;
  };
  const waiters = Array.from({ length: callers }, () => cache.getOrLoad(key, load));
  // Let every caller reach the coalescer before the load finishes.
  await new Promise((resolve) => setImmediate(resolve));
  settle(gate);
  const outcomes = await Promise.allSettled(waiters);
  return { outcomes, loads, load };
}

/** Registers the Cache contract suite for one implementation; `factory` gives a fresh cache per test. */
export function cacheContract(
  name: string,
  factory: (options: { readonly defaultTtlMs?: number }) => Promise<CacheFixture>,
  options: CacheContractOptions = {},
): void {
  const test = (title: string, body: (f: CacheFixture) => Promise<void>, fixtureOptions = {}) =>
    it(title, async () => {
      const fixture = await factory(fixtureOptions);
      try {
        await body(fixture);
      } finally {
        await fixture.cleanup();
      }
    });

  void describe(`Cache contract: ${name}`, options.testOptions ?? {}, () => {
    void test('misses, stores bytes exactly, overwrites and counts hits and misses', async ({ cache }) => {
      assert.equal(await cache.get('absent'), undefined);
      const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      await cache.set('k/ключ/🔑', bytes);
      const got = await cache.get('k/ключ/🔑');
      assert.ok(got !== undefined && bytes.equals(got));
      await cache.set('k/ключ/🔑', Buffer.from('second'));
      assert.equal((await cache.get('k/ключ/🔑'))?.toString(), 'second');
      await cache.set('empty', Buffer.alloc(0));
      assert.equal((await cache.get('empty'))?.length, 0);
      const stats = cache.stats();
      assert.equal(stats.hits, 3);
      assert.equal(stats.misses, 1);
      await cache.ping(2000);
    });

    void test('deletes one key and reports whether it existed', async ({ cache }) => {
      await cache.set('a', Buffer.from('1'));
      await cache.set('ab', Buffer.from('2'));
      assert.equal(await cache.delete('a'), true);
      assert.equal(await cache.delete('a'), false);
      assert.equal(await cache.get('a'), undefined);
      assert.equal((await cache.get('ab'))?.toString(), '2');
    });

    void test('deletes by prefix, literally, and nothing else', async ({ cache }) => {
      const keys = [
        'pkg:a*[1]?:x',
        'pkg:a*[1]?:y',
        'pkg:a*[1]',
        'pkg:ab:z',
        'pkg:aX[1]?:q',
        'other:a*[1]?:x',
      ];
      for (const key of keys) {
        await cache.set(key, Buffer.from(key));
      }
      assert.equal(await cache.deletePrefix('pkg:a*[1]?:'), 2);
      const left = [];
      for (const key of keys) {
        if ((await cache.get(key)) !== undefined) left.push(key);
      }
      assert.deepEqual(left, ['pkg:a*[1]', 'pkg:ab:z', 'pkg:aX[1]?:q', 'other:a*[1]?:x']);
      assert.equal(await cache.deletePrefix('nothing-here:'), 0);
    });

    void test('coalesces concurrent misses into one load and then serves the stored value', async ({
      cache,
    }) => {
      const { outcomes, loads, load } = await concurrentLoads(cache, 'co', 10, (g) =>
        g.resolve(Buffer.from('loaded')),
      );
      assert.equal(loads, 1);
      assert.ok(outcomes.every((o) => o.status === 'fulfilled' && o.value.toString() === 'loaded'));
      assert.equal((await cache.getOrLoad('co', load)).toString(), 'loaded');
      assert.equal((await cache.get('co'))?.toString(), 'loaded');
    });

    void test('gives a failed load to every waiter and does not cache it', async ({ cache }) => {
      const boom = new Error('upstream 503');
      const { outcomes, loads } = await concurrentLoads(cache, 'bad', 5, (g) => g.reject(boom));
      assert.equal(loads, 1);
      assert.ok(outcomes.every((o) => o.status === 'rejected' && o.reason === boom));
      assert.equal(await cache.get('bad'), undefined);
      assert.equal((await cache.getOrLoad('bad', () => Promise.resolve(Buffer.from('ok')))).toString(), 'ok');
      await assert.rejects(
        cache.getOrLoad('notbuf', () => Promise.resolve('text' as unknown as Buffer)),
        TypeError,
      );
    });

    void test('does not store a load that a delete overtook', async ({ cache }) => {
      const gate = deferred<Buffer>();
      const pending = cache.getOrLoad('race', () => gate.promise);
      await new Promise((resolve) => setImmediate(resolve));
      await cache.delete('race');
      gate.resolve(Buffer.from('stale'));
      assert.equal((await pending).toString(), 'stale');
      assert.equal(await cache.get('race'), undefined);
    });

    void test('expires entries after their TTL', async ({ cache, advance }) => {
      await cache.set('short', Buffer.from('s'), { ttlMs: 1000 });
      await cache.set('forever', Buffer.from('f'));
      assert.equal((await cache.get('short'))?.toString(), 's');
      await assert.rejects(cache.set('x', Buffer.from('x'), { ttlMs: 0 }), RangeError);
      await assert.rejects(cache.set('x', Buffer.from('x'), { ttlMs: Number.NaN }), RangeError);
      if (advance === undefined) return;
      advance(999);
      assert.equal((await cache.get('short'))?.toString(), 's');
      advance(1);
      assert.equal(await cache.get('short'), undefined);
      assert.equal((await cache.get('forever'))?.toString(), 'f');
    });

    void test(
      'applies the default TTL to entries set without one',
      async ({ cache, advance }) => {
        await cache.set('d', Buffer.from('d'));
        await cache.set('own', Buffer.from('o'), { ttlMs: 5000 });
        assert.equal((await cache.get('d'))?.toString(), 'd');
        if (advance === undefined) return;
        advance(2000);
        assert.equal(await cache.get('d'), undefined);
        assert.equal((await cache.get('own'))?.toString(), 'o');
      },
      { defaultTtlMs: 2000 },
    );
  });
}
