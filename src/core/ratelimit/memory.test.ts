import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { manualClock, rateLimitContract } from '#testing/contract-ratelimit';
import { createLimiterFactory } from './factory.ts';
import { createMemoryRateLimiter } from './memory.ts';

rateLimitContract('memory', () => {
  const clock = manualClock();
  const limiters = createLimiterFactory({ clock });
  return Promise.resolve({ limiters, clock, cleanup: () => limiters.close() });
});

void describe('memory token bucket', () => {
  void it('bounds its key table, evicting a full bucket before any partly used one', async () => {
    const clock = manualClock();
    const limiter = createMemoryRateLimiter({ rate: 1, burst: 2, clock, maxKeys: 3 });
    await limiter.take('drained', 2);
    await limiter.take('full-again');
    clock.advance(1000);
    await limiter.take('partly'); // 'full-again' has refilled to 2 by now: it is the one to go.
    await limiter.take('new');
    // 'drained' kept its state (refilled only 1 token in that second); its next take empties it.
    assert.deepEqual(await limiter.take('drained'), {
      allowed: true,
      remaining: 0,
      limit: 2,
      retryAfterMs: 0,
    });
    assert.equal((await limiter.take('drained')).allowed, false);
  });

  void it('evicts the least recently used key when no bucket is full', async () => {
    const clock = manualClock();
    const limiter = createMemoryRateLimiter({ rate: 1, burst: 1, clock, maxKeys: 2 });
    await limiter.take('a');
    await limiter.take('b');
    await limiter.take('a');
    await limiter.take('c');
    // 'b' went (least recently used): 'a' is still empty, while 'b' starts over full.
    assert.equal((await limiter.take('a')).allowed, false);
    assert.equal((await limiter.take('b')).allowed, true);
  });

  void it('never allows more than burst + rate × elapsed in any run of requests', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 10 }),
        fc.array(fc.record({ wait: fc.nat(700), cost: fc.integer({ min: 1, max: 5 }) }), { maxLength: 60 }),
        async (rate, burst, steps) => {
          const clock = manualClock(0);
          const limiter = createMemoryRateLimiter({ rate, burst, clock });
          let granted = 0;
          for (const { wait, cost } of steps) {
            clock.advance(wait);
            if (cost > burst) continue;
            const d = await limiter.take('k', cost);
            if (d.allowed) granted += cost;
            else assert.ok(d.retryAfterMs > 0 && d.retryAfterMs <= Math.ceil((cost * 1000) / rate));
            assert.ok(granted <= burst + (rate * clock.now()) / 1000 + 1e-9);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  void it('rejects impossible quotas', () => {
    assert.throws(() => createMemoryRateLimiter({ rate: -1, burst: 1 }), RangeError);
    assert.throws(() => createMemoryRateLimiter({ rate: 1, burst: 0.5 }), RangeError);
    assert.throws(() => createMemoryRateLimiter({ rate: 1, burst: 1, maxKeys: 0 }), RangeError);
    assert.throws(() => createMemoryRateLimiter({ rate: Number.POSITIVE_INFINITY, burst: 1 }), RangeError);
  });
});
