import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { cacheContract } from '#testing/contract-cache';
import { createMemoryCache } from './memory-cache.ts';

function fakeClock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

cacheContract('memory', ({ defaultTtlMs }) => {
  const clock = fakeClock();
  const cache = createMemoryCache({
    maxBytes: 1 << 20,
    clock,
    ...(defaultTtlMs === undefined ? {} : { defaultTtlMs }),
  });
  return Promise.resolve({ cache, advance: clock.advance, cleanup: () => cache.close() });
});

const buf = (n: number, fill = 'x') => Buffer.alloc(n, fill);

void describe('memory cache bounds', () => {
  void it('evicts least recently used entries to stay within maxBytes (key + value)', () => {
    // Each entry is a 1-byte key plus a 9-byte value: 10 bytes; room for three.
    const cache = createMemoryCache({ maxBytes: 30 });
    cache.setSync('a', buf(9));
    cache.setSync('b', buf(9));
    cache.setSync('c', buf(9));
    assert.equal(cache.stats().bytes, 30);
    assert.ok(cache.getSync('a') !== undefined, 'a is now the most recent');
    cache.setSync('d', buf(9));
    assert.equal(cache.getSync('b'), undefined, 'b was least recently used');
    assert.deepEqual(
      ['a', 'c', 'd'].map((k) => cache.getSync(k) !== undefined),
      [true, true, true],
    );
    const s = cache.stats();
    assert.deepEqual(
      { entries: s.entries, bytes: s.bytes, evictions: s.evictions, maxBytes: s.maxBytes },
      {
        entries: 3,
        bytes: 30,
        evictions: 1,
        maxBytes: 30,
      },
    );
  });

  void it('counts multi-byte keys by their UTF-8 length', () => {
    const cache = createMemoryCache({ maxBytes: 100 });
    cache.setSync('é🔑', buf(10));
    assert.equal(cache.stats().bytes, Buffer.byteLength('é🔑') + 10);
  });

  void it('does not cache a value larger than the whole cache, and keeps the rest', () => {
    const cache = createMemoryCache({ maxBytes: 50 });
    cache.setSync('small', buf(10));
    cache.setSync('huge', buf(100));
    assert.equal(cache.getSync('huge'), undefined);
    assert.ok(cache.getSync('small') !== undefined);
    assert.equal(cache.stats().evictions, 0);
  });

  void it('replacing a key frees the old value first', () => {
    const cache = createMemoryCache({ maxBytes: 40 });
    cache.setSync('k', buf(30));
    cache.setSync('other', buf(4));
    cache.setSync('k', buf(20));
    assert.equal(cache.stats().bytes, 21 + 9);
    assert.equal(cache.stats().evictions, 0);
  });

  void it('drops expired entries under t.mock.timers and counts them out of deletePrefix', (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 0 });
    const cache = createMemoryCache({ maxBytes: 1000 });
    cache.setSync('p:1', buf(1), { ttlMs: 100 });
    cache.setSync('p:2', buf(1));
    t.mock.timers.tick(100);
    assert.equal(cache.deletePrefixSync('p:'), 1);
    assert.equal(cache.stats().entries, 0);
    assert.equal(cache.stats().bytes, 0);
  });

  void it('rejects impossible options', () => {
    assert.throws(() => createMemoryCache({ maxBytes: 0 }), RangeError);
    assert.throws(() => createMemoryCache({ maxBytes: 1.5 }), RangeError);
    assert.throws(() => createMemoryCache({ maxBytes: 10, defaultTtlMs: -1 }), RangeError);
  });

  void it('matches a reference LRU model for any sequence of operations', () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('set' as const),
        key: fc.constantFrom('a', 'b', 'c', 'd', 'e'),
        size: fc.nat(40),
      }),
      fc.record({ kind: fc.constant('get' as const), key: fc.constantFrom('a', 'b', 'c', 'd', 'e') }),
      fc.record({ kind: fc.constant('del' as const), key: fc.constantFrom('a', 'b', 'c', 'd', 'e') }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const max = 64;
        const cache = createMemoryCache({ maxBytes: max });
        // The model: keys ordered least → most recent, with sizes.
        const model = new Map<string, number>();
        for (const o of ops) {
          if (o.kind === 'set') {
            model.delete(o.key);
            cache.setSync(o.key, buf(o.size));
            if (o.size + 1 <= max) {
              model.set(o.key, o.size + 1);
              let total = [...model.values()].reduce((a, b) => a + b, 0);
              for (const k of model.keys()) {
                if (total <= max) break;
                total -= model.get(k) ?? 0;
                model.delete(k);
              }
            }
          } else if (o.kind === 'get') {
            const size = model.get(o.key);
            assert.equal(cache.getSync(o.key)?.length, size === undefined ? undefined : size - 1);
            if (size !== undefined) {
              model.delete(o.key);
              model.set(o.key, size);
            }
          } else {
            assert.equal(cache.deleteSync(o.key), model.delete(o.key));
          }
          const bytes = [...model.values()].reduce((a, b) => a + b, 0);
          assert.equal(cache.stats().bytes, bytes);
          assert.ok(bytes <= max);
          assert.equal(cache.stats().entries, model.size);
        }
      }),
      { numRuns: 300 },
    );
  });
});
