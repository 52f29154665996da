import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLimiterFactory } from '#core/ratelimit';
import { isolatedRedis, requireRedis } from '#testing/services';
import { startTestServer } from './test-fixtures.ts';

const redis = requireRedis();

void describe('API rate limit on Redis', redis.options, () => {
  void it('shares one bucket per principal across two replicas', async () => {
    await using keys = isolatedRedis(redis.need(), 'http-ratelimit');
    const limiters = createLimiterFactory({ redisUrl: keys.url, keyPrefix: keys.prefix });
    try {
      // The limiter fails open while Redis is not connected yet; wait until it answers.
      await limiters.ping(5000);
      const config = { rateLimit: { rate: 0.001, burst: 3 } };
      await using a = await startTestServer(config, undefined, limiters);
      await using b = await startTestServer(config, undefined, limiters);
      const headers = { authorization: 'Bearer consumer-token' };
      const statuses: number[] = [];
      for (const server of [a, b, a, b]) {
        const response = await fetch(`${server.url}/healthz-not-a-probe`, { headers });
        statuses.push(response.status);
        await response.arrayBuffer();
      }
      // Three 404s used the shared bucket; the fourth request, on the other replica, is refused.
      assert.deepEqual(statuses, [404, 404, 404, 429]);
      const other = await fetch(`${b.url}/x`, { headers: { authorization: 'Bearer admin-token' } });
      assert.equal(other.status, 404, 'another principal has its own bucket');
      await other.arrayBuffer();
    } finally {
      await limiters.close();
    }
  });
});
