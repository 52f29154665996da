import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { compareSemver, formatSemver, parseSemver, parseSemverRange, satisfiesSemver } from './semver.ts';

const ident = fc.oneof(fc.nat({ max: 50 }), fc.stringMatching(/^[a-z][a-z0-9-]{0,5}$/));
const version = fc.record({
  major: fc.nat({ max: 20 }),
  minor: fc.nat({ max: 20 }),
  patch: fc.nat({ max: 20 }),
  prerelease: fc.array(ident, { maxLength: 3 }),
});
const text = (v: { major: number; minor: number; patch: number; prerelease: (string | number)[] }) =>
  formatSemver({ ...v, build: [] });

void describe('semver versions', () => {
  void it('orders the SemVer 2.0.0 §11 example chain', () => {
    const chain = [
      '1.0.0-alpha',
      '1.0.0-alpha.1',
      '1.0.0-alpha.beta',
      '1.0.0-beta',
      '1.0.0-beta.2',
      '1.0.0-beta.11',
      '1.0.0-rc.1',
      '1.0.0',
      '2.0.0',
      '2.1.0',
      '2.1.1',
    ];
    for (let i = 1; i < chain.length; i++)
      assert.equal(compareSemver(chain[i - 1] as string, chain[i] as string), -1);
  });

  void it('rejects malformed versions', () => {
    for (const bad of ['1', '1.2', '01.2.3', '1.2.3-', '1.2.3-01', 'a.b.c', '../1.2.3', '1.2.3.4', '']) {
      assert.equal(parseSemver(bad), undefined, bad);
    }
    assert.throws(() => compareSemver('x', '1.0.0'), RangeError);
  });

  void it('ignores build metadata for precedence', () => {
    assert.equal(compareSemver('1.0.0+abc', '1.0.0+def'), 0);
  });

  void it('round-trips, is antisymmetric and transitive (property)', () => {
    fc.assert(
      fc.property(version, version, version, (a, b, c) => {
        assert.deepEqual(parseSemver(text(a))?.prerelease, a.prerelease);
        const ab = compareSemver(text(a), text(b));
        assert.equal(ab, -compareSemver(text(b), text(a)) || 0);
        if (ab <= 0 && compareSemver(text(b), text(c)) <= 0) assert.ok(compareSemver(text(a), text(c)) <= 0);
      }),
    );
  });
});

void describe('semver ranges', () => {
  const cases: [string, string, boolean][] = [
    ['^1.2.3', '1.9.9', true],
    ['^1.2.3', '2.0.0', false],
    ['^1.2.3', '1.2.2', false],
    ['^0.2.3', '0.2.9', true],
    ['^0.2.3', '0.3.0', false],
    ['^0.0.3', '0.0.4', false],
    ['~1.2.3', '1.2.9', true],
    ['~1.2.3', '1.3.0', false],
    ['~1', '1.9.0', true],
    ['1.x', '1.4.0', true],
    ['1.2.*', '1.3.0', false],
    ['*', '9.9.9', true],
    ['', '0.0.1', true],
    ['>=1.0.0 <2.0.0', '1.5.0', true],
    ['<1.0.0 || >=2.0.0', '1.5.0', false],
    ['<1.0.0 || >=2.0.0', '2.5.0', true],
    ['1.2.3 - 2.3.4', '2.3.4', true],
    ['1.2.3 - 2.3', '2.3.9', true],
    ['1.2.3 - 2.3', '2.4.0', false],
    ['>1.2', '1.3.0', true],
    ['>1.2', '1.2.9', false],
    ['<=1.2', '1.2.9', true],
    ['<=1.2', '1.3.0', false],
    ['^1.2.3', '1.3.0-beta', false],
    ['^1.2.3-beta.1', '1.2.3-beta.2', true],
    ['^1.2.3-beta.1', '1.2.4-beta.2', false],
    ['>= 1.0.0', '1.0.0', true],
    ['=1.0.0', '1.0.0', true],
  ];
  for (const [range, v, expected] of cases) {
    void it(`"${v}" ${expected ? 'satisfies' : 'does not satisfy'} "${range}"`, () => {
      assert.equal(satisfiesSemver(v, range), expected);
    });
  }

  void it('rejects garbage ranges', () => {
    for (const bad of ['^^1', '>=a.b', '1.2.3 - ', '~>x.y.z'])
      assert.equal(parseSemverRange(bad), undefined, bad);
  });

  void it('caret range contains exactly the versions with the same leftmost non-zero part (property)', () => {
    fc.assert(
      fc.property(version, version, (base, cand) => {
        const b = { ...base, prerelease: [] };
        const c = { ...cand, prerelease: [] };
        const inside = satisfiesSemver(text(c), `^${text(b)}`);
        const ge = compareSemver(text(c), text(b)) >= 0;
        let same: boolean;
        if (b.major > 0) same = c.major === b.major;
        else if (b.minor > 0) same = c.major === 0 && c.minor === b.minor;
        else same = c.major === 0 && c.minor === 0 && c.patch === b.patch;
        assert.equal(inside, ge && same);
      }),
    );
  });

  void it('a comparator range agrees with compare (property)', () => {
    fc.assert(
      fc.property(version, version, fc.constantFrom('<', '<=', '>', '>='), (a, b, op) => {
        const x = { ...a, prerelease: [] };
        const c = compareSemver(text(x), text(b));
        const expected = { '<': c < 0, '<=': c <= 0, '>': c > 0, '>=': c >= 0 }[op];
        assert.equal(satisfiesSemver(text(x), `${op}${text(b)}`, { includePrerelease: true }), expected);
      }),
    );
  });
});
