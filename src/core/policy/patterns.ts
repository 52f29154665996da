import {
  normalizePypiName,
  parseGoVersion,
  parsePep440,
  parsePep440Specifier,
  parseSemverRange,
  satisfiesPep440,
  satisfiesSemver,
} from '#core/vulndb';
import type { Ecosystem } from './types.ts';

/** Normalizes a name the way its ecosystem compares names (PEP 503 for PyPI). */
export function normalizeName(ecosystem: Ecosystem, name: string): string {
  return ecosystem === 'pypi' ? normalizePypiName(name) : name;
}

function patternRegExp(pattern: string, flags: string): RegExp {
  const source = pattern
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`, flags);
}

/**
 * Compiles a wildcard name pattern: `*` matches any run of characters (scopes included, so
 * `@corp/*` works), `?` one character; everything else is literal. PyPI names compare after
 * PEP 503 normalization, so `Foo_Bar` and `foo-bar` are one project.
 */
export function compilePattern(pattern: string): (name: string, ecosystem?: Ecosystem) => boolean {
  const exact = patternRegExp(pattern, '');
  const pypi = patternRegExp(normalizeName('pypi', pattern), 'i');
  return (name, ecosystem) =>
    ecosystem === 'pypi' ? pypi.test(normalizeName('pypi', name)) : exact.test(name);
}

/** A Maven version or an artifact version (the artifacts door's own rule for versions). */
const VERSION_TOKEN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
/** distribution-spec: a tag, or a digest `<algorithm>:<encoded>`. */
const OCI_REFERENCE =
  /^(?:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}|[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[A-Za-z0-9=_-]{32,})$/;

/** Ecosystems without a range syntax: `|`-separated exact versions, each of the ecosystem's form. */
const EXACT = {
  go: { what: 'Go version list', valid: (v: string) => parseGoVersion(v) !== undefined },
  maven: { what: 'Maven version list', valid: (v: string) => VERSION_TOKEN.test(v) },
  oci: { what: 'OCI tag or digest list', valid: (v: string) => OCI_REFERENCE.test(v) },
  artifact: { what: 'artifact version list', valid: (v: string) => VERSION_TOKEN.test(v) },
} as const;

const splitExact = (range: string): string[] => range.split('|').map((s) => s.trim());
const anyVersion = (range: string): boolean => range.trim() === '' || range.trim() === '*';

/**
 * The exact versions a range names, for the ecosystems whose ranges are `|`-lists of exact
 * versions (Go, Maven, OCI, artifact); none for `*`, an absent range, or npm and PyPI ranges.
 * Call after compileVersionRange accepted the range.
 */
export function exactVersions(ecosystem: Ecosystem, range: string | undefined): readonly string[] {
  if (range === undefined || anyVersion(range) || ecosystem === 'npm' || ecosystem === 'pypi') return [];
  return splitExact(range);
}

/** A `|` that is not half of npm's `||`. */
const SINGLE_BAR = /(?<!\|)\|(?!\|)/;

/**
 * Compiles a version range in the ecosystem's own syntax (npm semver ranges, PEP 440
 * specifiers); other ecosystems take `*` or a `|`-separated list of exact versions, each in the
 * ecosystem's form (Go `v1.2.3`, an OCI tag or digest, a Maven or artifact version).
 * Throws RangeError on invalid syntax (a configuration mistake).
 */
export function compileVersionRange(
  ecosystem: Ecosystem,
  range: string | undefined,
): (version: string) => boolean {
  if (range === undefined || anyVersion(range)) return () => true;
  // The `|`-list the other ecosystems take (`4.17.20|4.17.21`) means the same in npm and PyPI,
  // whose own syntax has no single `|`: any of the parts, each a range of that ecosystem. Refused
  // as invalid there, such an entry without an ecosystem would be skipped and deny nothing.
  if ((ecosystem === 'npm' || ecosystem === 'pypi') && SINGLE_BAR.test(range)) {
    const parts = range.split(SINGLE_BAR).map((part) => compileVersionRange(ecosystem, part.trim()));
    return (v) => parts.some((matches) => matches(v));
  }
  if (ecosystem === 'npm') {
    const r = parseSemverRange(range);
    if (r === undefined) throw new RangeError(`Invalid npm version range "${range}"`);
    return (v) => satisfiesSemver(v, r, { includePrerelease: true });
  }
  if (ecosystem === 'pypi') {
    // A bare version (`2.31.0`) means that version, as it does in every other ecosystem; PEP 440
    // spells it `==2.31.0`. Not one with PEP 440's optional `v` (`v1` is an OCI or Go name).
    const bare = range.trim();
    const version = /^\d/.test(bare) && parsePep440(bare) !== undefined;
    const s = parsePep440Specifier(version ? `==${bare}` : range);
    if (s === undefined) throw new RangeError(`Invalid PEP 440 specifier "${range}"`);
    return (v) => satisfiesPep440(v, s, { includePrerelease: true });
  }
  const exact = new Set(splitExact(range));
  const { what, valid } = EXACT[ecosystem];
  const bad = [...exact].find((v) => !valid(v));
  if (bad !== undefined) throw new RangeError(`Invalid ${what} "${range}" ("${bad}")`);
  return (v) => exact.has(v);
}
