import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareSemver, formatSemver, parseSemver } from '#core/vulndb';
import fc from 'fast-check';
import { MalformedPackument, recomputeDistTags, renderPackument, summarize } from './packument.ts';

const versionArb = fc
  .record({
    major: fc.nat({ max: 5 }),
    minor: fc.nat({ max: 5 }),
    patch: fc.nat({ max: 5 }),
    prerelease: fc.option(fc.constantFrom(['beta', 1], ['rc', 0]), { nil: undefined }),
  })
  .map((v) => formatSemver({ ...v, prerelease: v.prerelease ?? [], build: [] }));

void describe('packument summary', () => {
  void it('rejects documents that are not the requested packument', () => {
    for (const bad of [
      null,
      [],
      'x',
      { name: 'other' },
      { name: 'p', versions: [] },
      { name: 'p', 'dist-tags': 'latest' },
    ]) {
      assert.throws(() => summarize(bad, 'p'), MalformedPackument);
    }
  });

  void it('extracts times and digests and skips invalid version keys', () => {
    const s = summarize(
      {
        name: 'p',
        'dist-tags': { latest: '1.0.0', bad: 3 },
        versions: {
          '1.0.0': { dist: { integrity: 'sha512-x', tarball: 'http://u/p-1.0.0.tgz' } },
          'not-semver': {},
        },
        time: { '1.0.0': '2026-01-01T00:00:00Z' },
      },
      'p',
    );
    assert.deepEqual(s.versions, [
      {
        version: '1.0.0',
        publishedAt: Date.parse('2026-01-01T00:00:00Z'),
        integrity: 'sha512-x',
        tarball: 'http://u/p-1.0.0.tgz',
      },
    ]);
    assert.deepEqual(s.distTags, { latest: '1.0.0' });
  });
});

void describe('dist-tag recomputation', () => {
  void it('moves latest to the newest kept stable version not above it', () => {
    assert.deepEqual(
      recomputeDistTags({ latest: '2.0.0', next: '3.0.0-rc.0' }, ['1.0.0', '1.5.0', '2.1.0-beta.1']),
      {
        latest: '1.5.0',
        next: '2.1.0-beta.1',
      },
    );
    assert.deepEqual(recomputeDistTags({ latest: '1.0.0' }, ['1.0.0', '2.0.0']), { latest: '1.0.0' });
    assert.deepEqual(recomputeDistTags({ beta: '2.0.0-beta.3' }, ['2.0.0-beta.2', '1.0.0']), {
      beta: '2.0.0-beta.2',
      latest: '1.0.0',
    });
  });

  void it('every tag points at a kept version and latest never moves up or to a prerelease when a stable one exists (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(versionArb, { minLength: 1, maxLength: 12 }),
        fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
        (all, keepMask) => {
          const kept = all.filter((_, i) => keepMask[i]);
          const latest =
            [...all]
              .filter((v) => (parseSemver(v)?.prerelease.length ?? 1) === 0)
              .sort(compareSemver)
              .at(-1) ?? (all[0] as string);
          const tags = recomputeDistTags({ latest }, kept);
          for (const v of Object.values(tags)) assert.ok(kept.includes(v));
          const stableKept = kept.filter((v) => (parseSemver(v)?.prerelease.length ?? 1) === 0);
          if (tags['latest'] !== undefined && stableKept.length > 0) {
            assert.equal(parseSemver(tags['latest'])?.prerelease.length, 0);
            const belowOrEqual = stableKept.filter((v) => compareSemver(v, latest) <= 0);
            if (belowOrEqual.length > 0)
              assert.equal(tags['latest'], belowOrEqual.sort(compareSemver).at(-1));
          }
          if (kept.length > 0) assert.ok(tags['latest'] !== undefined);
        },
      ),
    );
  });
});

void describe('packument rendering', () => {
  void it('removes refused versions from versions and time and rewrites tarballs only', () => {
    const doc = {
      name: '@s/p',
      'dist-tags': { latest: '2.0.0' },
      versions: {
        '1.0.0': {
          name: '@s/p',
          version: '1.0.0',
          scripts: { test: 'x' },
          dist: { integrity: 'sha512-a', signatures: [{ sig: 's' }], tarball: 'http://u/a.tgz' },
        },
        '2.0.0': {
          name: '@s/p',
          version: '2.0.0',
          dist: { integrity: 'sha512-b', tarball: 'http://u/b.tgz' },
        },
      },
      time: {
        created: '2020-01-01T00:00:00Z',
        modified: '2021-01-01T00:00:00Z',
        '1.0.0': '2020-01-01T00:00:00Z',
        '2.0.0': '2021-01-01T00:00:00Z',
      },
      readme: 'hello',
    };
    const out = renderPackument(doc, summarize(doc, '@s/p'), {
      denied: new Set(['2.0.0']),
      tarballBase: 'http://gw/npm/@s/p/-/',
    });
    const full = JSON.parse(out.full);
    const abbr = JSON.parse(out.abbreviated);
    assert.deepEqual(Object.keys(full.versions), ['1.0.0']);
    assert.equal(full.time['2.0.0'], undefined);
    assert.equal(full.readme, 'hello');
    assert.deepEqual(full.versions['1.0.0'].dist, {
      integrity: 'sha512-a',
      signatures: [{ sig: 's' }],
      tarball: 'http://gw/npm/@s/p/-/p-1.0.0.tgz',
    });
    assert.deepEqual(full['dist-tags'], { latest: '1.0.0' });
    assert.equal(abbr.versions['1.0.0'].scripts, undefined);
    assert.equal(abbr.modified, '2021-01-01T00:00:00Z');
    assert.deepEqual(Object.keys(abbr.time).sort(), ['1.0.0', 'created', 'modified']);
  });
});
