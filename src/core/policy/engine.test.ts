import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateRaw } from '#core/config';
import { type AdvisorySummary } from '#core/vulndb';
import { policyConfigSchema } from './config.ts';
import { createPolicyEngine } from './engine.ts';
import type { PackageVulnerabilities, PolicySubject, Rule, VulnerabilitySource } from './types.ts';

const DAY = 86_400_000;
const NOW = Date.parse('2026-11-20T12:00:00Z');
const clock = { now: () => NOW };
const parse = (raw: Record<string, unknown>) => validateRaw(policyConfigSchema, raw, 'test');
/** An engine with one deny list of these entries (for `ecosystems`, all when empty) and other rules. */
const denying = (entries: unknown[], ecosystems: string[] = [], ...rules: unknown[]) =>
  createPolicyEngine(
    parse({ rules: [{ id: 'deny', type: 'denyList', ecosystems, list: { entries } }, ...rules] }),
    {
      clock,
    },
  );
const subject = (over: Partial<PolicySubject> = {}): PolicySubject => ({
  ecosystem: 'npm',
  name: 'lodash',
  version: '4.17.20',
  publishedAt: NOW - 30 * DAY,
  ...over,
});

const oci = (over: Partial<PolicySubject>) => subject({ ecosystem: 'oci', name: 'hub/app', ...over });

function advisory(
  id: string,
  severity: AdvisorySummary['severity'],
  aliases: string[] = [],
): AdvisorySummary {
  return { id, aliases, summary: `Problem ${id}`, severity, vectors: [], modified: '2026-01-01T00:00:00Z' };
}

function source(
  affecting: Record<string, AdvisorySummary[]>,
  fixed: Record<string, AdvisorySummary[]> = {},
): VulnerabilitySource {
  const pkg: PackageVulnerabilities = {
    available: true,
    updatedAt: NOW - DAY,
    affecting: (v) => affecting[v] ?? [],
    fixedBy: (v) => fixed[v] ?? [],
  };
  return { forPackage: async () => pkg };
}

void describe('policy engine', () => {
  void it('applies the default: two days of age and fail-open vulnerabilities', async () => {
    const engine = createPolicyEngine(parse({}), { clock });
    const old = await engine.evaluate(subject());
    assert.equal(old.outcome, 'warn');
    assert.equal(old.allowed, true);
    assert.match(old.reason, /fail-open/);
    const fresh = await engine.evaluate(subject({ publishedAt: NOW - DAY }));
    assert.equal(fresh.allowed, false);
    assert.equal(fresh.allowAt, NOW + DAY);
    assert.match(fresh.reason, /minimum age is 2d; allowed from 2026-11-21T12:00:00.000Z/);
    assert.equal(fresh.results.length, 2, 'every rule result is kept');
  });

  void it('denies a missing timestamp unless configured to allow it', async () => {
    const deny = createPolicyEngine(parse({}), { clock });
    const { publishedAt: _, ...noTime } = subject();
    assert.equal((await deny.evaluate(noTime)).allowed, false);
    const allow = createPolicyEngine(
      parse({ rules: [{ id: 'age', type: 'minimumAge', minimumAge: { missingTimestamp: 'allow' } }] }),
      { clock },
    );
    assert.equal((await allow.evaluate(noTime)).allowed, true);
  });

  void it('excludes wildcard patterns from the age rule', async () => {
    const engine = createPolicyEngine(
      parse({ rules: [{ id: 'age', type: 'minimumAge', minimumAge: { age: '7d', exclude: ['@corp/*'] } }] }),
      { clock },
    );
    assert.equal((await engine.evaluate(subject({ name: '@corp/tool', publishedAt: NOW }))).allowed, true);
    assert.equal((await engine.evaluate(subject({ name: '@corpx/tool', publishedAt: NOW }))).allowed, false);
    assert.equal((await engine.evaluate(subject({ name: 'corp-tool', publishedAt: NOW }))).allowed, false);
  });

  void it('applies age exclusions and per-registry overrides to every ecosystem in its own names', async () => {
    // Each ecosystem's own name form: npm scopes, PEP 503-normalized PyPI names, Go module paths,
    // Maven groupId:artifactId, OCI <uplink>/<repository>.
    const cases = [
      { ecosystem: 'npm', excluded: '@corp/tool', kept: '@corpx/tool', pattern: '@corp/*', version: '1.0.0' },
      {
        ecosystem: 'pypi',
        excluded: 'Corp_Internal.Tool',
        kept: 'corp-external',
        pattern: 'corp-internal-*',
        version: '1.0',
      },
      {
        ecosystem: 'go',
        excluded: 'git.corp.example/team/lib',
        kept: 'example.test/lib',
        pattern: 'git.corp.example/*',
        version: 'v1.0.0',
      },
      {
        ecosystem: 'maven',
        excluded: 'com.corp.platform:core',
        kept: 'com.corpx:core',
        pattern: 'com.corp.*:*',
        version: '1.0',
      },
      {
        ecosystem: 'oci',
        excluded: 'internal/corp/app',
        kept: 'hub/corp/app',
        pattern: 'internal/*',
        version: 'v1',
      },
    ] as const;
    for (const c of cases) {
      const engine = createPolicyEngine(
        parse({
          rules: [{ id: 'age', type: 'minimumAge', minimumAge: { age: '7d', exclude: [c.pattern] } }],
          registries: {
            mirror: { exclude: ['age'] },
            slow: { rules: [{ id: 'age', type: 'minimumAge', minimumAge: { age: '1h' } }] },
          },
        }),
        { clock },
      );
      const young = (name: string, registry?: string, publishedAt = NOW - 2 * 3_600_000) =>
        engine.evaluate({
          ecosystem: c.ecosystem,
          name,
          version: c.version,
          publishedAt,
          ...(registry === undefined ? {} : { registry }),
        });
      const excluded = await young(c.excluded);
      assert.equal(excluded.allowed, true, `${c.ecosystem}: ${c.excluded}`);
      assert.match(excluded.results[0]?.reason ?? '', /excluded from the age rule/);
      assert.equal((await young(c.kept)).allowed, false, `${c.ecosystem}: ${c.kept}`);
      assert.equal(
        (await young(c.kept, 'mirror')).allowed,
        true,
        `${c.ecosystem}: rule excluded for "mirror"`,
      );
      assert.equal((await young(c.kept, 'slow')).allowed, true, `${c.ecosystem}: 1h age for "slow"`);
      assert.equal((await young(c.kept, 'slow', NOW - 60_000)).allowed, false, `${c.ecosystem}: 1 min old`);
    }
  });

  void it('lets a young version through when it fixes a known vulnerability', async () => {
    const fix = advisory('GHSA-aaaa-bbbb-cccc', 'high');
    const vulnerabilities = source({}, { '4.17.21': [fix] });
    const engine = createPolicyEngine(parse({}), { clock, vulnerabilities });
    const d = await engine.evaluate(subject({ version: '4.17.21', publishedAt: NOW - 3_600_000 }));
    assert.equal(d.allowed, true);
    assert.match(d.results[0]?.reason ?? '', /fixes GHSA-aaaa-bbbb-cccc/);
    assert.equal(d.databaseUpdatedAt, NOW - DAY);
    const other = await engine.evaluate(subject({ version: '4.17.22', publishedAt: NOW - 3_600_000 }));
    assert.equal(other.allowed, false);
  });

  void it('denies at or above the threshold and honours accepted advisories until they expire', async () => {
    const vulnerabilities = source({
      '1.0.0': [advisory('GHSA-high', 'high', ['CVE-2026-1'])],
      '1.0.1': [advisory('GHSA-low', 'low')],
    });
    const raw = (expires: string) => ({
      rules: [
        {
          id: 'vulns',
          type: 'vulnerability',
          vulnerability: {
            threshold: 'high',
            allow: [{ id: 'CVE-2026-1', reason: 'not reachable', expires }],
          },
        },
      ],
    });
    const valid = createPolicyEngine(parse(raw('2026-12-01')), { clock, vulnerabilities });
    const accepted = await valid.evaluate(subject({ version: '1.0.0' }));
    assert.equal(accepted.allowed, true);
    assert.match(accepted.reason, /passed every rule/);
    const expired = createPolicyEngine(parse(raw('2026-11-19')), { clock, vulnerabilities });
    const d = await expired.evaluate(subject({ version: '1.0.0' }));
    assert.equal(d.allowed, false);
    assert.match(d.reason, /GHSA-high \(high\): Problem GHSA-high/);
    assert.equal((await expired.evaluate(subject({ version: '1.0.1' }))).allowed, true);
  });

  void it('fails closed when configured and the database is unavailable', async () => {
    const engine = createPolicyEngine(
      parse({ rules: [{ id: 'v', type: 'vulnerability', vulnerability: { whenUnavailable: 'closed' } }] }),
      { clock },
    );
    const d = await engine.evaluate(subject());
    assert.equal(d.allowed, false);
    assert.match(d.reason, /fail-closed/);
  });

  void it('records a throwing rule with its failure mode while the others still run', async () => {
    const boom = (onError: 'deny' | 'allow'): Rule => ({
      id: 'boom',
      name: 'Boom',
      onError,
      appliesTo: () => true,
      evaluate: () => {
        throw new Error('exploded');
      },
    });
    const raw = parse({ rules: [{ id: 'deny', type: 'denyList', list: { entries: [{ name: 'evil-*' }] } }] });
    const closed = createPolicyEngine(raw, { clock, extraRules: [boom('deny')] });
    const d = await closed.evaluate(subject());
    assert.equal(d.allowed, false);
    assert.equal(d.results.length, 2);
    assert.equal(d.results[1]?.error, 'exploded');
    const open = createPolicyEngine(raw, { clock, extraRules: [boom('allow')] });
    assert.equal((await open.evaluate(subject())).allowed, true);
    assert.equal((await open.evaluate(subject({ name: 'evil-pkg' }))).allowed, false);
    assert.notEqual(closed.version, createPolicyEngine(raw, { clock }).version);
  });

  void it('combines OR groups and AND across groups', async () => {
    const raw = parse({
      rules: [
        { id: 'age', type: 'minimumAge', group: 'trust', minimumAge: { age: '7d' } },
        {
          id: 'internal',
          type: 'allowList',
          group: 'trust',
          list: { mode: 'only', entries: [{ name: '@corp/*' }] },
        },
        { id: 'deny', type: 'denyList', list: { entries: [{ name: '@corp/bad', versions: '<2.0.0' }] } },
      ],
    });
    const engine = createPolicyEngine(raw, { clock });
    assert.equal((await engine.evaluate(subject({ name: '@corp/new', publishedAt: NOW }))).allowed, true);
    assert.equal((await engine.evaluate(subject({ name: 'left-pad', publishedAt: NOW }))).allowed, false);
    assert.equal((await engine.evaluate(subject({ name: 'left-pad' }))).allowed, true);
    assert.equal((await engine.evaluate(subject({ name: '@corp/bad', version: '1.9.0' }))).allowed, false);
    assert.equal((await engine.evaluate(subject({ name: '@corp/bad', version: '2.0.0' }))).allowed, true);
  });

  void it('lets an exempt allow-list entry decide over denials', async () => {
    const raw = parse({
      rules: [
        { id: 'age', type: 'minimumAge' },
        {
          id: 'trusted',
          type: 'allowList',
          list: { entries: [{ name: 'requests', versions: '>=2.31', ecosystem: 'pypi' }] },
        },
      ],
    });
    const engine = createPolicyEngine(raw, { clock });
    const pypi = (version: string) =>
      subject({ ecosystem: 'pypi', name: 'Requests', version, publishedAt: NOW });
    assert.equal((await engine.evaluate(pypi('2.32.0'))).allowed, true);
    assert.equal((await engine.evaluate(pypi('2.30.0'))).allowed, false);
    assert.equal(
      (await engine.evaluate(subject({ name: 'requests', version: '2.32.0', publishedAt: NOW }))).allowed,
      false,
    );
  });

  void it('applies per-registry exclusions, overrides and additions in order', async () => {
    const raw = parse({
      rules: [
        { id: 'age', type: 'minimumAge', minimumAge: { age: '2d' } },
        { id: 'deny', type: 'denyList', list: { entries: [{ name: 'bad' }] } },
      ],
      registries: {
        internal: { exclude: ['age'] },
        strict: {
          rules: [
            { id: 'age', type: 'minimumAge', minimumAge: { age: '60d' } },
            { id: 'extra', type: 'denyList', list: { entries: [{ name: 'lodash', versions: '<5' }] } },
          ],
        },
      },
    });
    const engine = createPolicyEngine(raw, { clock });
    assert.deepEqual(
      engine.rulesFor('internal').map((r) => r.id),
      ['deny'],
    );
    assert.deepEqual(
      engine.rulesFor('strict').map((r) => r.id),
      ['age', 'deny', 'extra'],
    );
    assert.deepEqual(
      engine.rulesFor('unknown').map((r) => r.id),
      ['age', 'deny'],
    );
    assert.equal((await engine.evaluate(subject({ registry: 'internal', publishedAt: NOW }))).allowed, true);
    assert.equal((await engine.evaluate(subject({ publishedAt: NOW }))).allowed, false);
    const strict = await engine.evaluate(subject({ registry: 'strict' }));
    assert.equal(strict.allowed, false);
    assert.equal(strict.results.filter((r) => r.outcome === 'deny').length, 2);
  });

  void it('rejects configuration mistakes at build time', () => {
    assert.throws(
      () =>
        createPolicyEngine(
          parse({
            rules: [{ id: 'a', type: 'denyList', list: { entries: [{ name: 'x', versions: '^^1' }] } }],
          }),
          { clock },
        ),
      RangeError,
    );
    assert.throws(
      () =>
        createPolicyEngine(
          parse({
            rules: [
              { id: 'a', type: 'minimumAge' },
              { id: 'a', type: 'minimumAge' },
            ],
          }),
          { clock },
        ),
      /Duplicate rule id "a"/,
    );
    assert.throws(
      () => createPolicyEngine(parse({ registries: { x: { exclude: ['nope'] } } }), { clock }),
      /unknown rule "nope"/,
    );
    assert.throws(() => parse({ rules: [{ id: 'a', type: 'magic' }] }), TypeError);
  });

  void it('applies a list entry without an ecosystem where its versions are valid syntax, skipping the others', async () => {
    const engine = denying([
      { name: 'hub/team/app', versions: 'v1' },
      { name: 'six', versions: '3.3.6' },
    ]);
    const denied = async (over: Partial<PolicySubject>) => !(await engine.evaluate(subject(over))).allowed;
    // `v1` is an OCI tag (and an npm range), not a PEP 440 specifier: the entry skips PyPI.
    assert.equal(await denied({ ecosystem: 'oci', name: 'hub/team/app', version: 'v1' }), true);
    assert.equal(await denied({ ecosystem: 'oci', name: 'hub/team/app', version: 'v2' }), false);
    assert.equal(await denied({ ecosystem: 'pypi', name: 'hub/team/app', version: '1.0' }), false);
    // `3.3.6` is an npm, Maven, OCI and (bare, as `==3.3.6`) PyPI version, not a Go one (`v3.3.6`).
    assert.equal(await denied({ name: 'six', version: '3.3.6' }), true);
    assert.equal(await denied({ ecosystem: 'maven', name: 'six', version: '3.3.6' }), true);
    assert.equal(await denied({ ecosystem: 'go', name: 'six', version: 'v3.3.6' }), false);
    assert.equal(await denied({ ecosystem: 'pypi', name: 'six', version: '3.3.6' }), true);
    assert.equal(await denied({ ecosystem: 'pypi', name: 'six', version: '3.3.7' }), false);
    // Valid in none of the rule's ecosystems, or not in the one the entry names: a mistake.
    const build = (entry: Record<string, unknown>, ecosystems?: string[]) => () =>
      denying([entry], ecosystems);
    assert.throws(
      build({ name: 'x', versions: 'v1' }, ['pypi']),
      /List entry "x" has versions "v1" that are valid in none of its ecosystems \(pypi: Invalid PEP 440 specifier "v1"\)/,
    );
    assert.throws(build({ name: 'x', versions: '1.0', ecosystem: 'go' }), /Invalid Go version list "1.0"/);
    assert.throws(
      build({ name: 'x', versions: 'a b', ecosystem: 'oci' }),
      /Invalid OCI tag or digest list "a b"/,
    );
    assert.doesNotThrow(build({ name: 'x', versions: `v1|sha256:${'a'.repeat(64)}`, ecosystem: 'oci' }));
  });

  void it('reads a |-list of versions in npm and PyPI as in the other ecosystems, so such an entry is not skipped there', async () => {
    const engine = denying([
      { name: 'lodash', versions: '4.17.20|4.17.21' },
      { name: 'requests', versions: '2.31.0 | >=3' },
      { name: 'either', versions: '1.0.0 || 2.0.0' },
    ]);
    const denied = async (over: Partial<PolicySubject>) => !(await engine.evaluate(subject(over))).allowed;
    assert.equal(await denied({ name: 'lodash', version: '4.17.20' }), true);
    assert.equal(await denied({ name: 'lodash', version: '4.17.21' }), true);
    assert.equal(await denied({ name: 'lodash', version: '4.17.19' }), false);
    assert.equal(await denied({ ecosystem: 'maven', name: 'lodash', version: '4.17.20' }), true);
    assert.equal(await denied({ ecosystem: 'pypi', name: 'requests', version: '2.31.0' }), true);
    assert.equal(await denied({ ecosystem: 'pypi', name: 'requests', version: '3.1' }), true);
    assert.equal(await denied({ ecosystem: 'pypi', name: 'requests', version: '2.32.0' }), false);
    // npm's own `||` is unchanged.
    assert.equal(await denied({ name: 'either', version: '2.0.0' }), true);
    assert.equal(await denied({ name: 'either', version: '1.5.0' }), false);
  });

  void it('matches list entries against the subject digest and aliases, as against its version', async () => {
    const digest = `sha256:${'b'.repeat(64)}`;
    const engine = denying([{ name: 'hub/app', versions: `v1|${digest}`, reason: 'pinned' }], ['oci']);
    const other = `sha256:${'c'.repeat(64)}`;
    // By digest: denied itself, or through a tag known to point at it.
    const byDigest = await engine.evaluate(oci({ version: other, digest: other, aliases: ['v1', 'x'] }));
    assert.equal(byDigest.allowed, false);
    assert.match(
      byDigest.reason,
      /"hub\/app@sha256:c+" \(through "v1"\) is on the deny list as "hub\/app v1\|sha256:b+": pinned/,
    );
    assert.equal((await engine.evaluate(oci({ version: digest, digest }))).allowed, false);
    // By tag: denied itself, through its digest, or through another tag of that digest.
    assert.equal((await engine.evaluate(oci({ version: 'latest', digest }))).allowed, false);
    assert.equal(
      (await engine.evaluate(oci({ version: 'latest', digest: other, aliases: ['v1'] }))).allowed,
      false,
    );
    assert.equal(
      (await engine.evaluate(oci({ version: 'latest', digest: other, aliases: ['v2'] }))).allowed,
      true,
    );
    assert.equal((await engine.evaluate(oci({ version: other, digest: other }))).allowed, true);
  });

  void it('names the exact versions its list entries name for a package, and denies an unresolved one', async () => {
    const digest = `sha256:${'d'.repeat(64)}`;
    const engine = denying(
      [
        { name: 'hub/team/*', versions: `v1|${digest}` },
        { name: 'hub/team/app', versions: 'v2', ecosystem: 'oci' },
        { name: 'hub/other' },
      ],
      [],
      {
        id: 'allow',
        type: 'allowList',
        ecosystems: ['oci'],
        list: { entries: [{ name: 'hub/*', versions: 'ok' }] },
      },
      {
        id: 'npm-only',
        type: 'denyList',
        ecosystems: ['npm'],
        list: { entries: [{ name: 'hub/team/app', versions: '3.0.0' }] },
      },
    );
    assert.deepEqual(
      engine.namedVersions('oci', 'hub/team/app', 'hub').toSorted(),
      ['ok', digest, 'v1', 'v2'].toSorted(),
    );
    assert.deepEqual(engine.namedVersions('oci', 'hub/other', 'hub'), ['ok']);
    assert.deepEqual(engine.namedVersions('oci', 'elsewhere/app', 'hub'), []);
    // A deny entry naming an alias that could not be resolved refuses (fail closed); an allow entry does not matter.
    const unresolved = [{ version: 'v1', reason: 'uplink down' }];
    const refused = await engine.evaluate(
      oci({ name: 'hub/team/app', version: 'latest', unresolvedAliases: unresolved }),
    );
    assert.equal(refused.allowed, false);
    assert.match(
      refused.reason,
      /cannot be checked against the deny list entry "hub\/team\/\* v1\|sha256:d+": where "v1" points is unknown \(uplink down\)/,
    );
    const other = [{ version: 'ok', reason: 'uplink down' }];
    assert.equal(
      (await engine.evaluate(oci({ name: 'hub/team/app', version: 'latest', unresolvedAliases: other })))
        .allowed,
      true,
    );
  });

  void it('derives a stable policy version that changes with the configuration', () => {
    const a = createPolicyEngine(parse({}), { clock }).version;
    assert.equal(a, createPolicyEngine(parse({}), { clock }).version);
    assert.match(a, /^[0-9a-f]{16}$/);
    const b = createPolicyEngine(
      parse({ rules: [{ id: 'min-age', type: 'minimumAge', minimumAge: { age: '3d' } }] }),
      { clock },
    );
    assert.notEqual(a, b.version);
  });
});
