import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { affectedEntryMatches } from '../osv.ts';
import {
  compareGo,
  goPseudoVersionTime,
  isCanonicalGoVersion,
  isGoPseudoVersion,
  parseGoVersion,
} from './go.ts';

void describe('Go module versions', () => {
  void it('orders releases, pre-releases and pseudo-versions as the go command does', () => {
    const chain = [
      'v0.0.0-20180101000000-aaaaaaaaaaaa',
      'v0.0.0-20191109021931-daa7c04131f5',
      'v0.1.0',
      'v1.0.0-alpha',
      'v1.0.0-alpha.1',
      'v1.0.0-beta',
      'v1.0.0-rc.1',
      'v1.0.0',
      'v1.0.1-0.20200101000000-bbbbbbbbbbbb',
      'v1.0.1',
      'v1.2.0-pre',
      'v1.2.0-pre.0.20200202000000-cccccccccccc',
      'v1.2.0',
      'v2.0.0+incompatible',
      'v2.1.0+incompatible',
      'v10.0.0',
    ];
    for (let i = 0; i < chain.length; i++)
      for (let j = 0; j < chain.length; j++)
        assert.equal(
          compareGo(chain[i] as string, chain[j] as string),
          Math.sign(i - j),
          `${chain[i]} vs ${chain[j]}`,
        );
  });

  void it('accepts OSV spellings without the v and ignores +incompatible in precedence', () => {
    assert.equal(compareGo('1.2.3', 'v1.2.3'), 0);
    assert.equal(compareGo('v2.0.0+incompatible', 'v2.0.0'), 0);
    assert.equal(parseGoVersion('v2.0.0+incompatible')?.incompatible, true);
  });

  void it('refuses what is not a module version', () => {
    for (const bad of [
      'v1',
      'v1.2',
      'v01.2.3',
      'v1.2.3-01',
      'v1.2.3+build',
      'V1.2.3',
      '=1.2.3',
      ' v1.2.3',
      'latest',
      '',
      'v1.2.3-',
      'v1.2.3-a..b',
    ])
      assert.equal(parseGoVersion(bad), undefined, bad);
    assert.ok(!isCanonicalGoVersion('v1.0.0+incompatible'));
    assert.ok(!isCanonicalGoVersion('1.0.0'));
    assert.ok(isCanonicalGoVersion('v2.3.4+incompatible'));
  });

  void it('reads the commit time of pseudo-versions', () => {
    assert.ok(isGoPseudoVersion('v0.0.0-20191109021931-daa7c04131f5'));
    assert.ok(!isGoPseudoVersion('v1.0.0-rc.1'));
    assert.equal(
      goPseudoVersionTime('v0.0.0-20191109021931-daa7c04131f5'),
      Date.parse('2019-11-09T02:19:31Z'),
    );
    assert.equal(
      goPseudoVersionTime('v1.2.4-0.20200102030405-abcdefabcdef'),
      Date.parse('2020-01-02T03:04:05Z'),
    );
    assert.equal(goPseudoVersionTime('v1.2.3'), undefined);
  });

  void it('is antisymmetric and transitive, and formatting round-trips (property)', () => {
    const part = fc.nat({ max: 30 });
    const pre = fc.option(
      fc.array(
        fc.oneof(part.map(String), fc.constantFrom('alpha', 'beta', 'rc', 'pre', '0', '20200101000000-abc')),
        {
          minLength: 1,
          maxLength: 3,
        },
      ),
      { nil: undefined },
    );
    const arb = fc
      .tuple(part, part, part, pre)
      .map(([a, b, c, p]) => `v${a}.${b}.${c}${p === undefined ? '' : `-${p.join('.')}`}`);
    fc.assert(
      fc.property(arb, arb, arb, (a, b, c) => {
        assert.ok(parseGoVersion(a) !== undefined, a);
        assert.equal(compareGo(a, b) + compareGo(b, a), 0);
        if (compareGo(a, b) <= 0 && compareGo(b, c) <= 0) assert.ok(compareGo(a, c) <= 0);
        assert.equal(compareGo(a, a.slice(1)), 0);
      }),
      { numRuns: 1000 },
    );
  });
});

void describe('OSV ranges for Go and Maven', () => {
  void it('evaluates Go ECOSYSTEM ranges with pseudo-versions and versions lists', () => {
    const entry = {
      package: { ecosystem: 'Go', name: 'example.test/lib' },
      ranges: [{ type: 'SEMVER' as const, events: [{ introduced: '0' }, { fixed: '1.2.0' }] }],
    };
    assert.ok(affectedEntryMatches(entry, 'v1.1.9'));
    assert.ok(affectedEntryMatches(entry, 'v0.0.0-20191109021931-daa7c04131f5'));
    assert.ok(affectedEntryMatches(entry, 'v1.2.0-rc.1'));
    assert.ok(!affectedEntryMatches(entry, 'v1.2.0'));
    assert.ok(!affectedEntryMatches(entry, 'v1.2.1-0.20200101000000-abcdefabcdef'));
    const eco = { package: { ecosystem: 'Go', name: 'x' }, ranges: [], versions: ['2.0.0+incompatible'] };
    assert.ok(affectedEntryMatches(eco, 'v2.0.0+incompatible'));
  });

  void it('evaluates Maven ECOSYSTEM ranges with ComparableVersion order', () => {
    const entry = {
      package: { ecosystem: 'Maven', name: 'org.example:lib' },
      ranges: [{ type: 'ECOSYSTEM' as const, events: [{ introduced: '2.0-beta9' }, { fixed: '2.15.0' }] }],
    };
    for (const v of ['2.0-beta9', '2.0-rc1', '2.0', '2.14.1', '2.15.0-rc1'])
      assert.ok(affectedEntryMatches(entry, v), v);
    for (const v of ['2.0-beta8', '2.0-alpha1', '2.15.0', '2.15.0.Final', '2.16', '1.2.17'])
      assert.ok(!affectedEntryMatches(entry, v), v);
  });
});
