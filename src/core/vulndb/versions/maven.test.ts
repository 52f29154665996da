import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { compareMaven, isMavenPrerelease, parseMavenVersion } from './maven.ts';

// The ascending chains of maven-artifact's ComparableVersionTest (Maven 3.8+, where a trailing
// ".X" counts as "-X": 2.0.a is 2-a, below 2-1).
const QUALIFIER_CHAIN = [
  '1-alpha2snapshot',
  '1-alpha2',
  '1-alpha-123',
  '1-beta-2',
  '1-beta123',
  '1-m2',
  '1-m11',
  '1-rc',
  '1-cr2',
  '1-rc123',
  '1-SNAPSHOT',
  '1',
  '1-sp',
  '1-sp2',
  '1-sp123',
  '1-abc',
  '1-def',
  '1-pom-1',
  '1-1-snapshot',
  '1-1',
  '1-2',
  '1-123',
];
const NUMBER_CHAIN = [
  '2.0',
  '2.0.a',
  '2-1',
  '2.0.2',
  '2.0.123',
  '2.1.0',
  '2.1-a',
  '2.1b',
  '2.1-c',
  '2.1-1',
  '2.1.0.1',
  '2.2',
  '2.123',
  '11.a2',
  '11.a11',
  '11.b2',
  '11.b11',
  '11.m2',
  '11.m11',
  '11',
  '11.a',
  '11b',
  '11c',
  '11m',
];

const token = fc.oneof(
  fc.nat({ max: 20 }).map(String),
  fc.constantFrom(
    'alpha',
    'beta',
    'a',
    'b',
    'm',
    'rc',
    'cr',
    'snapshot',
    'SNAPSHOT',
    'ga',
    'final',
    'sp',
    'xyz',
    '',
  ),
);
// Real versions start with a number; release aliases (ga, final) inside a qualifier chain are
// where ComparableVersion is known not to be transitive, so they are tested separately above.
const realisticToken = token.filter((t) => !['ga', 'final', ''].includes(t));
const versionArb = fc
  .tuple(
    fc.nat({ max: 20 }),
    fc.array(fc.tuple(fc.constantFrom('.', '-', ''), realisticToken), { maxLength: 4 }),
  )
  .map(([first, rest]) => `${first}${rest.map(([s, t]) => `${s}${t}`).join('')}`);

const numberToken = fc.nat({ max: 20 }).map(String);
const dashedArb = fc
  .tuple(
    fc.nat({ max: 20 }),
    fc.array(
      fc.oneof(
        fc.tuple(fc.constantFrom('.', '-'), numberToken),
        fc.tuple(
          fc.constant('-'),
          realisticToken.filter((t) => !/^\d+$/.test(t)),
        ),
      ),
      { maxLength: 4 },
    ),
  )
  .map(([first, rest]) => `${first}${rest.map(([s, t]) => `${s}${t}`).join('')}`);

void describe('Maven ComparableVersion ordering', () => {
  for (const [name, chain] of [
    ['qualifiers', QUALIFIER_CHAIN],
    ['numbers', NUMBER_CHAIN],
  ] as const) {
    void it(`orders the ${name} chain of the reference tests strictly`, () => {
      for (let i = 0; i < chain.length; i++)
        for (let j = 0; j < chain.length; j++)
          assert.equal(
            compareMaven(chain[i] as string, chain[j] as string),
            Math.sign(i - j),
            `${chain[i]} vs ${chain[j]}`,
          );
    });
  }

  void it('treats aliases and trailing zeros as equal', () => {
    const equal = [
      ['1', '1.0', '1.0.0', '1-ga', '1-final', '1-release', '1.ga', '1.0.0-0.0'],
      ['1-cr', '1-rc'],
      ['1a1', '1-alpha-1', '1alpha1', '1-ALPHA-1'],
      ['1b2', '1-beta-2'],
      ['1m3', '1-milestone-3'],
      ['1X', '1x', '1-x'],
      ['2.0.a', '2.0.0.a', '2-a', '2.a'],
      ['1.x1', '1x1', '1-x-1'],
    ];
    for (const group of equal)
      for (const a of group) for (const b of group) assert.equal(compareMaven(a, b), 0, `${a} = ${b}`);
  });

  void it('orders numbers beyond 64 bits numerically', () => {
    assert.equal(compareMaven('1.99999999999999999999999', '1.100000000000000000000000'), -1);
    assert.equal(compareMaven('1.0002', '1.2'), 0);
  });

  void it('refuses empty, blank and oversized text', () => {
    for (const bad of ['', ' 1.0', '1.0 ', 'x'.repeat(300)]) assert.equal(parseMavenVersion(bad), undefined);
    assert.throws(() => compareMaven('', '1'), RangeError);
  });

  void it('recognizes pre-releases', () => {
    for (const v of ['1.0-SNAPSHOT', '2.0-alpha-1', '3.0.0-M2', '1.0-rc1', '1.0.beta'])
      assert.ok(isMavenPrerelease(parseMavenVersion(v) as never), v);
    for (const v of ['1.0', '1.0-sp1', '2.1-1', '3.0.0.Final', '1.0-jre'])
      assert.ok(!isMavenPrerelease(parseMavenVersion(v) as never), v);
  });

  void it('is reflexive and antisymmetric (property)', () => {
    fc.assert(
      fc.property(versionArb, versionArb, (a, b) => {
        assert.equal(compareMaven(a, a), 0);
        assert.equal(compareMaven(a, b) + compareMaven(b, a), 0);
      }),
      { numRuns: 2000 },
    );
  });

  // ComparableVersion itself is not transitive once a qualifier sits in a list of numbers
  // (Maven 3.8.7: 18.alpha < 18 < 18.alphaalpha.alpha < 18.alpha), and the door follows Maven
  // (test/integration/registry/maven-order.test.ts checks it against maven-artifact). Versions
  // whose qualifiers all follow "-", as real releases spell them, are totally preordered.
  void it('is a total preorder on versions with "-" before every qualifier (property)', () => {
    fc.assert(
      fc.property(dashedArb, dashedArb, dashedArb, (a, b, c) => {
        if (compareMaven(a, b) <= 0 && compareMaven(b, c) <= 0)
          assert.ok(compareMaven(a, c) <= 0, `${a} ${b} ${c}`);
        if (compareMaven(a, b) === 0) assert.equal(compareMaven(a, c), compareMaven(b, c));
      }),
      { numRuns: 3000 },
    );
  });

  void it('ignores case (property)', () => {
    fc.assert(
      fc.property(versionArb, (a) => assert.equal(compareMaven(a, a.toUpperCase()), 0)),
      { numRuns: 1000 },
    );
  });

  void it('appending a numeric component never makes a version smaller (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: 40 }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1, max: 99 }),
        (parts, n) => {
          const a = `1.${parts.join('.')}`;
          assert.ok(compareMaven(`${a}.${n}`, a) > 0, `${a}.${n} > ${a}`);
        },
      ),
    );
  });
});
