import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { canonicalJson, chainProblem, eventHash, GENESIS_HASH } from './chain.ts';

const shuffleKeys = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map((v) => shuffleKeys(v));
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .toReversed()
      .map(([k, v]) => [k, shuffleKeys(v)]),
  );
};

/** The hash rule as ADR 0030 states it, on the general canonicalJson. */
const referenceHash = (event: Record<string, unknown>) => {
  const { hash: _ignored, ...rest } = event;
  return createHash('sha256').update(String(event['prevHash'])).update(canonicalJson(rest)).digest('hex');
};

void describe('canonicalJson', () => {
  void it('is valid JSON of the same value, independent of key order', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = canonicalJson(value);
        assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(value)));
        assert.equal(canonicalJson(shuffleKeys(value)), text);
        assert.equal(canonicalJson(JSON.parse(text)), text, 'a read-back value hashes the same');
      }),
    );
  });

  void it('leaves out undefined members', () => {
    assert.equal(canonicalJson({ b: 1, a: undefined, c: [undefined] }), '{"b":1,"c":[null]}');
  });
});

void describe('chainProblem', () => {
  const first = {
    seq: 1,
    time: 't',
    actor: 'a',
    action: 'x',
    resource: 'r',
    decision: 'info' as const,
    prevHash: GENESIS_HASH,
  };
  const event = { ...first, hash: eventHash(first) };

  void it('accepts a well-formed first record and names each way a record can be wrong', () => {
    const expected = { seq: 1, prevHash: GENESIS_HASH };
    assert.equal(chainProblem(event, expected), undefined);
    assert.match(chainProblem({ ...event, actor: 'b' }, expected) ?? '', /changed/);
    assert.match(chainProblem({ ...event, seq: 2 }, expected) ?? '', /record 1 is missing/);
    assert.match(chainProblem(event, { seq: 2, prevHash: GENESIS_HASH }) ?? '', /inserted/);
    assert.match(chainProblem(event, { seq: 1, prevHash: 'f'.repeat(64) }) ?? '', /prevHash/);
  });

  void it('hashes exactly the canonical JSON of the event without its hash, whatever its members', () => {
    const text = fc.option(fc.string(), { nil: undefined });
    const members = fc.record(
      {
        seq: fc.nat(),
        time: fc.string(),
        actor: fc.string(),
        action: fc.string(),
        resource: fc.string(),
        decision: fc.constantFrom('allow', 'deny', 'error', 'info'),
        reason: text,
        requestId: text,
        clientIp: text,
        details: fc.option(fc.dictionary(fc.string(), fc.jsonValue()), { nil: undefined }),
        prevHash: fc.string(),
        hash: fc.string(),
      },
      { requiredKeys: ['seq', 'time', 'actor', 'action', 'resource', 'decision', 'prevHash'] },
    );
    const extra = fc.option(fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 2 }), { nil: undefined });
    fc.assert(
      // eventHash writes the known members without sorting them: the same bytes are hashed.
      fc.property(members, extra, fc.boolean(), (known, more, reversed) => {
        const whole: Record<string, unknown> = { ...known, ...more };
        const ordered = reversed ? (shuffleKeys(whole) as Record<string, unknown>) : whole;
        assert.equal(eventHash(ordered as never), referenceHash(whole));
      }),
    );
    // A member that is not enumerable is not part of the JSON, as with canonicalJson.
    const hidden = { ...first };
    Object.defineProperty(hidden, 'reason', { value: 'r', enumerable: false });
    assert.equal(eventHash(hidden), eventHash(first));
  });

  void it('changes the hash when any field changes', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (a, b) => {
        fc.pre(a !== b);
        assert.notEqual(eventHash({ ...first, reason: a }), eventHash({ ...first, reason: b }));
      }),
    );
  });
});
