/**
 * The one contract suite of the limiters (token bucket and concurrency), run in memory and on
 * the real Redis server, where two factory instances stand for two replicas.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LimiterFactory } from '#core/app';

/** A fake clock shared by the limiters of one fixture. */
export interface ManualClock {
  now(): number;
  advance(ms: number): void;
}

/** Creates a clock that only moves when told to. */
export function manualClock(start = 1_700_000_000_000): ManualClock {
  let now = start;
  return {
    now: () => now,
    advance: (ms) => {
      now += ms;
    },
  };
}

/** One fresh limiter namespace for a test. */
export interface LimiterFixture {
  readonly limiters: LimiterFactory;
  /** A second instance sharing the same state (another replica), where the backend is shared. */
  readonly replica?: LimiterFactory;
  /** The clock both instances use. */
  readonly clock: ManualClock;
  cleanup(): Promise<void>;
}

/** Registers the limiter contract suite for one backend. */
export function rateLimitContract(
  name: string,
  factory: () => Promise<LimiterFixture>,
  options: { readonly testOptions?: { readonly skip?: string } } = {},
): void {
  const test = (title: string, body: (f: LimiterFixture) => Promise<void>) =>
    it(title, async () => {
      const fixture = await factory();
      try {
        await body(fixture);
      } finally {
        await fixture.cleanup();
      }
    });

  void describe(`Limiter contract: ${name}`, options.testOptions ?? {}, () => {
    void test("keeps each client's tokens when the rate or burst is reloaded, capped at the new burst", async ({
      limiters,
    }) => {
      const before = limiters.tokenBucket('reloaded', { rate: 1, burst: 10 });
      assert.equal((await before.take('busy', 8)).remaining, 2);
      assert.equal((await before.take('idle', 1)).remaining, 9);
      // The operator lowers the burst during an attack: the busy client must not start full.
      const after = limiters.tokenBucket('reloaded', { rate: 1, burst: 5 });
      const busy = await after.take('busy', 3);
      assert.equal(busy.allowed, false, JSON.stringify(busy));
      assert.equal(busy.limit, 5);
      assert.equal((await after.take('idle', 5)).allowed, true, 'nine tokens are capped at the new five');
      assert.equal((await after.take('idle', 1)).allowed, false);
      assert.equal((await after.take('new', 5)).allowed, true, 'a new client starts at the new burst');
    });

    void test('allows the burst, then refuses with the exact time to the next token', async ({
      limiters,
    }) => {
      const bucket = limiters.tokenBucket('burst', { rate: 2, burst: 5 });
      for (let i = 4; i >= 0; i -= 1) {
        assert.deepEqual(await bucket.take('ip:1'), {
          allowed: true,
          remaining: i,
          limit: 5,
          retryAfterMs: 0,
        });
      }
      assert.deepEqual(await bucket.take('ip:1'), {
        allowed: false,
        remaining: 0,
        limit: 5,
        retryAfterMs: 500,
      });
      assert.equal((await bucket.take('ip:1')).allowed, false, 'a refusal costs nothing and still refuses');
    });

    void test('refills over time, never beyond the burst', async ({ limiters, clock }) => {
      const bucket = limiters.tokenBucket('refill', { rate: 10, burst: 3 });
      for (let i = 0; i < 3; i += 1) assert.equal((await bucket.take('k')).allowed, true);
      clock.advance(99);
      const early = await bucket.take('k');
      assert.equal(early.allowed, false);
      assert.equal(early.retryAfterMs, 1);
      clock.advance(1);
      assert.equal((await bucket.take('k')).allowed, true);
      clock.advance(3_600_000);
      assert.equal((await bucket.take('k')).remaining, 2, 'an hour refills to the burst and no further');
    });

    void test('keeps keys apart', async ({ limiters }) => {
      const bucket = limiters.tokenBucket('keys', { rate: 1, burst: 2 });
      await bucket.take('user:a');
      await bucket.take('user:a');
      assert.equal((await bucket.take('user:a')).allowed, false);
      assert.deepEqual(await bucket.take('user:b'), {
        allowed: true,
        remaining: 1,
        limit: 2,
        retryAfterMs: 0,
      });
    });

    void test('charges a cost above one, and refuses costs it can never allow', async ({ limiters }) => {
      const bucket = limiters.tokenBucket('cost', { rate: 4, burst: 10 });
      assert.deepEqual(await bucket.take('k', 4), {
        allowed: true,
        remaining: 6,
        limit: 10,
        retryAfterMs: 0,
      });
      assert.deepEqual(await bucket.take('k', 7), {
        allowed: false,
        remaining: 6,
        limit: 10,
        retryAfterMs: 250,
      });
      assert.deepEqual(await bucket.take('k', 6), {
        allowed: true,
        remaining: 0,
        limit: 10,
        retryAfterMs: 0,
      });
      await assert.rejects(bucket.take('k', 11), RangeError);
      await assert.rejects(bucket.take('k', 0), RangeError);
      await assert.rejects(bucket.take('k', -1), RangeError);
      await assert.rejects(bucket.take('k', Number.NaN), RangeError);
    });

    void test('forgets a key on reset', async ({ limiters }) => {
      const bucket = limiters.tokenBucket('reset', { rate: 1, burst: 2 });
      await bucket.take('login:alice', 2);
      assert.equal((await bucket.take('login:alice')).allowed, false);
      await bucket.reset('login:alice');
      assert.equal((await bucket.take('login:alice')).remaining, 1);
    });

    void test('hands out at most max slots per key, each released exactly once', async ({ limiters }) => {
      const slots = limiters.concurrency('uploads', 2);
      const a = await slots.tryAcquire('tenant:1');
      const b = await slots.tryAcquire('tenant:1');
      assert.ok(a !== undefined && b !== undefined);
      assert.equal(await slots.tryAcquire('tenant:1'), undefined);
      assert.ok((await slots.tryAcquire('tenant:2')) !== undefined, 'another key has its own slots');
      assert.equal(await slots.active('tenant:1'), 2);
      a.release();
      a.release();
      assert.equal(await slots.active('tenant:1'), 1, 'a double release frees one slot only');
      const c = await slots.tryAcquire('tenant:1');
      assert.ok(c !== undefined);
      assert.equal(await slots.tryAcquire('tenant:1'), undefined);
      b.release();
      c.release();
      assert.equal(await slots.active('tenant:1'), 0);
    });

    void test('returns the same limiter for the same name and quota, a new one for a new quota', async ({
      limiters,
    }) => {
      const first = limiters.tokenBucket('same', { rate: 1, burst: 1 });
      assert.equal(limiters.tokenBucket('same', { rate: 1, burst: 1 }), first);
      await first.take('k');
      const changed = limiters.tokenBucket('same', { rate: 1, burst: 3 });
      assert.notEqual(changed, first);
      assert.equal((await changed.take('k')).limit, 3);
      assert.throws(() => limiters.tokenBucket('bad', { rate: 0, burst: 1 }), RangeError);
      assert.throws(() => limiters.concurrency('bad', 0), RangeError);
    });

    void test('shares limits between replicas', async ({ limiters, replica }) => {
      if (replica === undefined) return;
      const here = limiters.tokenBucket('shared', { rate: 1, burst: 3 });
      const there = replica.tokenBucket('shared', { rate: 1, burst: 3 });
      await here.take('ip:9', 2);
      assert.deepEqual(await there.take('ip:9'), { allowed: true, remaining: 0, limit: 3, retryAfterMs: 0 });
      assert.equal((await here.take('ip:9')).allowed, false);
      const slotsHere = limiters.concurrency('shared', 1);
      const slotsThere = replica.concurrency('shared', 1);
      const permit = await slotsHere.tryAcquire('x');
      assert.ok(permit !== undefined);
      assert.equal(await slotsThere.tryAcquire('x'), undefined);
      permit.release();
      assert.equal(await slotsHere.active('x'), 0);
      const moved = await slotsThere.tryAcquire('x');
      assert.ok(moved !== undefined, 'the released slot is free on the other replica');
      moved.release();
    });
  });
}
