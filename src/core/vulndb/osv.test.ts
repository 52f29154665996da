import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseCvss, roundUp, severityOfScore } from './cvss.ts';
import { affectedEntryMatches, asOsvRecord, type OsvAffected, summarizeAdvisory } from './osv.ts';
import { comparePep440, formatPep440 } from './versions/pep440.ts';
import { compareSemver, formatSemver, satisfiesSemver } from './versions/semver.ts';

const npm = (ranges: OsvAffected['ranges'], versions?: string[]): OsvAffected => ({
  package: { ecosystem: 'npm', name: 'lodash' },
  ...(ranges === undefined ? {} : { ranges }),
  ...(versions === undefined ? {} : { versions }),
});

/** An entry listing `versions` of a package in `ecosystem`. */
const listed = (ecosystem: string, versions: string[]): OsvAffected => ({
  package: { ecosystem, name: 'x' },
  versions,
});

void describe('OSV range evaluation', () => {
  void it('handles introduced/fixed, several intervals and introduced "0"', () => {
    const entry = npm([
      {
        type: 'SEMVER',
        events: [{ introduced: '0' }, { fixed: '1.0.5' }, { introduced: '2.0.0' }, { fixed: '2.1.0' }],
      },
    ]);
    const expect = {
      '0.0.1': true,
      '1.0.4': true,
      '1.0.5': false,
      '1.9.9': false,
      '2.0.0': true,
      '2.0.9': true,
      '2.1.0': false,
    };
    for (const [v, affected] of Object.entries(expect))
      assert.equal(affectedEntryMatches(entry, v), affected, v);
  });

  void it('treats last_affected as inclusive and limit as an exclusive upper bound', () => {
    const last = npm([{ type: 'ECOSYSTEM', events: [{ introduced: '1.0.0' }, { last_affected: '1.2.0' }] }]);
    assert.equal(affectedEntryMatches(last, '1.2.0'), true);
    assert.equal(affectedEntryMatches(last, '1.2.1'), false);
    const limited = npm([{ type: 'SEMVER', events: [{ introduced: '0' }, { limit: '3.0.0' }] }]);
    assert.equal(affectedEntryMatches(limited, '2.9.9'), true);
    assert.equal(affectedEntryMatches(limited, '3.0.0'), false);
  });

  void it('matches explicit version lists and skips GIT ranges', () => {
    const entry = npm(
      [{ type: 'GIT', repo: 'https://example.test/x.git', events: [{ introduced: '0' }] }],
      ['1.0.0'],
    );
    assert.equal(affectedEntryMatches(entry, '1.0.0'), true);
    assert.equal(affectedEntryMatches(entry, '1.0.1'), false);
    // Listed versions are compared as the ecosystem compares them, not as text.
    for (const [ecosystem, list, asked, expected] of [
      ['PyPI', ['2.0'], '2.0.0', true],
      ['PyPI', ['1.0rc1'], '1.0.RC1', true],
      ['PyPI', ['1.0rc1'], '1.0', false],
      ['Maven', ['1.0'], '1.0.0', true],
      ['Maven', ['1.0'], '1.0.1', false],
      ['Go', ['v1.2.3'], '1.2.3', true],
      ['npm', ['1.0.0'], '1.0.0+build.5', true],
      ['npm', ['1.0.0'], '1.0.0-rc.1', false],
    ] as const)
      assert.equal(
        affectedEntryMatches(listed(ecosystem, [...list]), asked),
        expected,
        `${ecosystem} ${list[0]} ${asked}`,
      );
  });

  void it('uses PEP 440 ordering for PyPI ECOSYSTEM ranges', () => {
    const entry: OsvAffected = {
      package: { ecosystem: 'PyPI', name: 'Django' },
      ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '4.0' }, { fixed: '4.0.10' }] }],
    };
    assert.equal(affectedEntryMatches(entry, '4.0.9'), true);
    assert.equal(affectedEntryMatches(entry, '4.0.10rc1'), true);
    assert.equal(affectedEntryMatches(entry, '4.0.10'), false);
    assert.equal(affectedEntryMatches(entry, '4.0.dev1'), false);
  });

  void it('agrees with the equivalent semver range (property)', () => {
    const ver = fc
      .record({ major: fc.nat({ max: 4 }), minor: fc.nat({ max: 4 }), patch: fc.nat({ max: 4 }) })
      .map((v) => formatSemver({ ...v, prerelease: [], build: [] }));
    fc.assert(
      fc.property(ver, ver, ver, fc.boolean(), (a, b, probe, inclusive) => {
        const [lo, hi] = compareSemver(a, b) <= 0 ? [a, b] : [b, a];
        const end = inclusive ? { last_affected: hi } : { fixed: hi };
        const entry = npm([{ type: 'SEMVER', events: [end, { introduced: lo }] }]);
        const range = `>=${lo} ${inclusive ? '<=' : '<'}${hi}`;
        assert.equal(affectedEntryMatches(entry, probe), satisfiesSemver(probe, range));
      }),
    );
  });

  void it('is monotone between introduced and fixed for PEP 440 (property)', () => {
    const ver = fc
      .tuple(fc.nat({ max: 5 }), fc.nat({ max: 5 }), fc.option(fc.nat({ max: 2 }), { nil: undefined }))
      .map(([x, y, rc]) =>
        formatPep440({
          epoch: 0,
          release: [x, y],
          local: [],
          ...(rc === undefined ? {} : { pre: ['rc', rc] as ['rc', number] }),
        }),
      );
    fc.assert(
      fc.property(ver, ver, ver, (a, b, probe) => {
        const [lo, hi] = comparePep440(a, b) <= 0 ? [a, b] : [b, a];
        const entry: OsvAffected = {
          package: { ecosystem: 'PyPI', name: 'x' },
          ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: lo }, { fixed: hi }] }],
        };
        const expected = comparePep440(probe, lo) >= 0 && comparePep440(probe, hi) < 0;
        assert.equal(affectedEntryMatches(entry, probe), expected);
      }),
    );
  });

  void it('validates record shapes', () => {
    assert.equal(asOsvRecord({ id: 'X', modified: '2026-01-01T00:00:00Z' })?.id, 'X');
    for (const bad of [
      null,
      'x',
      { id: '' },
      { id: 'X' },
      { id: 'X', modified: 'm', affected: {} },
      { id: 'X', modified: 'm', affected: [{ ranges: [{}] }] },
    ]) {
      assert.equal(asOsvRecord(bad), undefined);
    }
  });
});

void describe('CVSS', () => {
  const known: [string, number][] = [
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', 9.8],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H', 10],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N', 6.1],
    ['CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N', 5.5],
    ['CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:L', 3.7],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N', 0],
  ];
  for (const [vector, score] of known) {
    void it(`scores ${vector} as ${score}`, () => assert.equal(parseCvss(vector)?.baseScore, score));
  }

  void it('rejects malformed vectors and accepts v4 metrics', () => {
    for (const bad of [
      '',
      'CVSS:2.0/AV:N',
      'CVSS:3.1/AV:N',
      'CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
      'CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
    ]) {
      assert.equal(parseCvss(bad), undefined, bad);
    }
    const v4 = parseCvss('CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N');
    assert.equal(v4?.version, '4.0');
    assert.equal(v4?.metrics['VC'], 'H');
  });

  void it('rounds up per the v3.1 appendix and bands scores', () => {
    assert.equal(roundUp(4.02), 4.1);
    assert.equal(roundUp(4.0), 4);
    assert.deepEqual([0, 0.1, 4, 7, 9].map(severityOfScore), ['none', 'low', 'medium', 'high', 'critical']);
  });

  void it('summarizes an advisory with the worst of its vectors and labels', () => {
    const s = summarizeAdvisory({
      id: 'GHSA-1',
      modified: '2026-01-01T00:00:00Z',
      severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:L' }],
      database_specific: { severity: 'MODERATE' },
    });
    assert.equal(s.severity, 'medium');
    assert.equal(s.score, 3.7);
  });
});
