import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { manualClock, rateLimitContract } from '#testing/contract-ratelimit';
import { closedPort, isolatedRedis, requireRedis } from '#testing/services';
import { createLimiterFactory } from './factory.ts';

const redis = requireRedis();

rateLimitContract(
  'redis',
  async () => {
    const space = isolatedRedis(redis.need(), 'ratelimit');
    const clock = manualClock();
    const limiters = createLimiterFactory({ redisUrl: space.url, keyPrefix: space.prefix, clock });
    const replica = createLimiterFactory({ redisUrl: space.url, keyPrefix: space.prefix, clock });
    await Promise.all([limiters.ping(), replica.ping()]);
    return {
      limiters,
      replica,
      clock,
      async cleanup() {
        await limiters.close();
        await replica.close();
        await space.cleanup();
      },
    };
  },
  { testOptions: redis.options },
);

void describe('redis limiters', redis.options, () => {
  void it('uses the server clock without an injected one, and lets the bucket key expire', async () => {
    await using space = isolatedRedis(redis.need(), 'rl-time');
    const limiters = createLimiterFactory({ redisUrl: space.url, keyPrefix: space.prefix });
    const raw = new Redis(space.url);
    try {
      await limiters.ping();
      const bucket = limiters.tokenBucket('t', { rate: 2, burst: 4 });
      assert.equal((await bucket.take('k', 3)).remaining, 1);
      const ttl = await raw.pttl(`${space.prefix}rl:b:t:k`);
      // Refilling 3 tokens at 2/s takes 1.5 s; the key lives that long plus a second of slack.
      assert.ok(ttl > 2000 && ttl <= 2500, `PTTL ${ttl}`);
      const slots = limiters.concurrency('c', 1);
      const permit = await slots.tryAcquire('k');
      assert.ok(permit !== undefined);
      assert.ok((await raw.pttl(`${space.prefix}rl:c:c:k`)) > 0, 'slot keys expire too');
      permit.release();
    } finally {
      raw.disconnect();
      await limiters.close();
    }
  });

  void it('frees the slots of a replica that died holding them when their lease runs out', async () => {
    await using space = isolatedRedis(redis.need(), 'rl-lease');
    const clock = manualClock();
    const dead = createLimiterFactory({ redisUrl: space.url, keyPrefix: space.prefix, clock });
    const alive = createLimiterFactory({ redisUrl: space.url, keyPrefix: space.prefix, clock });
    try {
      await Promise.all([dead.ping(), alive.ping()]);
      assert.ok((await dead.concurrency('jobs', 1).tryAcquire('q')) !== undefined);
      await dead.close();
      assert.equal(await alive.concurrency('jobs', 1).tryAcquire('q'), undefined);
      clock.advance(60_001);
      const permit = await alive.concurrency('jobs', 1).tryAcquire('q');
      assert.ok(permit !== undefined, 'the lease of the dead holder ran out');
      permit.release();
    } finally {
      await alive.close();
    }
  });

  void it('fails open by default and closed on request when Redis is down, without hanging', async () => {
    const url = `redis://127.0.0.1:${await closedPort()}`;
    const open = createLimiterFactory({ redisUrl: url });
    const closed = createLimiterFactory({ redisUrl: url, failureMode: 'closed' });
    try {
      const started = performance.now();
      await assert.rejects(open.ping(300), { code: 'GW_ERR_CACHE_UNAVAILABLE' });
      assert.equal((await open.tokenBucket('x', { rate: 1, burst: 1 }).take('k')).allowed, true);
      assert.ok((await open.concurrency('x', 1).tryAcquire('k')) !== undefined);
      const refused = await closed.tokenBucket('x', { rate: 1, burst: 1 }).take('k');
      assert.equal(refused.allowed, false);
      assert.ok(refused.retryAfterMs > 0);
      assert.equal(await closed.concurrency('x', 1).tryAcquire('k'), undefined);
      assert.ok(performance.now() - started < 2000);
    } finally {
      await open.close();
      await closed.close();
    }
  });

  void it('rejects a URL that is not a Redis URL', () => {
    assert.throws(() => createLimiterFactory({ redisUrl: 'postgres://x' }), TypeError);
  });
});
