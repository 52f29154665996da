/**
 * npm semver: SemVer 2.0.0 versions and node-semver range syntax (comparators, X-ranges, tilde,
 * caret, hyphen ranges and `||`), written here because OSV range evaluation and policy lists
 * must agree exactly with what the npm CLI resolves.
 */

/** A parsed SemVer 2.0.0 version; `build` is kept but never affects precedence (SemVer §10). */
export interface SemVer {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  readonly prerelease: readonly (string | number)[];
  readonly build: readonly string[];
}

const NUM = '0|[1-9]\\d*';
const IDENT = `(?:${NUM}|\\d*[a-zA-Z-][a-zA-Z0-9-]*)`;
const VERSION_RE = new RegExp(
  `^[v=\\s]*(${NUM})\\.(${NUM})\\.(${NUM})(?:-(${IDENT}(?:\\.${IDENT})*))?(?:\\+([0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*))?$`,
);

/** Parses a version (a leading `v` or `=` is accepted as npm does); undefined when invalid. */
export function parseSemver(text: string): SemVer | undefined {
  if (text.length > 256) return undefined;
  const m = VERSION_RE.exec(text.trim());
  if (m === null) return undefined;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  const patch = Number(m[3]);
  if (!Number.isSafeInteger(major) || !Number.isSafeInteger(minor) || !Number.isSafeInteger(patch)) {
    return undefined;
  }
  const prerelease = m[4] === undefined ? [] : m[4].split('.').map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  return { major, minor, patch, prerelease, build: m[5] === undefined ? [] : m[5].split('.') };
}

function compareIdentifiers(a: string | number, b: string | number): number {
  // SemVer §11.4: numeric identifiers sort before alphanumeric ones.
  if (typeof a === 'number' && typeof b === 'number') return Math.sign(a - b);
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function comparePre(a: SemVer, b: SemVer): number {
  if (a.prerelease.length === 0 && b.prerelease.length === 0) return 0;
  if (a.prerelease.length === 0) return 1;
  if (b.prerelease.length === 0) return -1;
  const n = Math.min(a.prerelease.length, b.prerelease.length);
  for (let i = 0; i < n; i++) {
    const c = compareIdentifiers(a.prerelease[i] as string | number, b.prerelease[i] as string | number);
    if (c !== 0) return c;
  }
  return Math.sign(a.prerelease.length - b.prerelease.length);
}

/** Precedence order of two parsed versions: negative, zero or positive. */
export function compareSemverParsed(a: SemVer, b: SemVer): number {
  return (
    Math.sign(a.major - b.major) ||
    Math.sign(a.minor - b.minor) ||
    Math.sign(a.patch - b.patch) ||
    comparePre(a, b)
  );
}

/** Compares two version strings; throws RangeError when either is not a valid version. */
export function compareSemver(a: string, b: string): number {
  const pa = parseSemver(a);
  const pb = parseSemver(b);
  if (pa === undefined) throw new RangeError(`Invalid semver version "${a}"`);
  if (pb === undefined) throw new RangeError(`Invalid semver version "${b}"`);
  return compareSemverParsed(pa, pb);
}

/** The canonical text of a version (without build metadata). */
export function formatSemver(v: SemVer): string {
  const pre = v.prerelease.length === 0 ? '' : `-${v.prerelease.join('.')}`;
  return `${v.major}.${v.minor}.${v.patch}${pre}`;
}

type Op = '<' | '<=' | '>' | '>=' | '=';

interface Comparator {
  readonly op: Op;
  readonly version: SemVer;
}

/** A parsed range: a union (`||`) of intersections of comparators; an empty set matches anything. */
export interface SemverRange {
  readonly raw: string;
  readonly sets: readonly (readonly Comparator[])[];
}

interface Partial {
  readonly major?: number;
  readonly minor?: number;
  readonly patch?: number;
  readonly prerelease: readonly (string | number)[];
}

const PARTIAL_RE = new RegExp(
  `^[v=]*(${NUM}|[xX*])(?:\\.(${NUM}|[xX*])(?:\\.(${NUM}|[xX*])(?:-?(${IDENT}(?:\\.${IDENT})*))?(?:\\+[0-9A-Za-z.-]+)?)?)?$`,
);

function parsePartial(text: string): Partial | undefined {
  if (text === '' || text === '*' || text === 'x' || text === 'X') return { prerelease: [] };
  const m = PARTIAL_RE.exec(text);
  if (m === null) return undefined;
  const num = (s: string | undefined) => (s === undefined || /^[xX*]$/.test(s) ? undefined : Number(s));
  const major = num(m[1]);
  const minor = major === undefined ? undefined : num(m[2]);
  const patch = minor === undefined ? undefined : num(m[3]);
  const prerelease =
    patch === undefined || m[4] === undefined
      ? []
      : m[4].split('.').map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  return {
    ...(major === undefined ? {} : { major }),
    ...(minor === undefined ? {} : { minor }),
    ...(patch === undefined ? {} : { patch }),
    prerelease,
  };
}

const v = (
  major: number,
  minor: number,
  patch: number,
  prerelease: readonly (string | number)[] = [],
): SemVer => ({
  major,
  minor,
  patch,
  prerelease,
  build: [],
});

/** The lowest version that is greater than every version matching the partial (`1.2` → `1.3.0-0`). */
function upperOf(p: Partial): SemVer | undefined {
  if (p.major === undefined) return undefined;
  if (p.minor === undefined) return v(p.major + 1, 0, 0, [0]);
  return v(p.major, p.minor + 1, 0, [0]);
}

const lowerOf = (p: Partial): SemVer => v(p.major ?? 0, p.minor ?? 0, p.patch ?? 0, p.prerelease);

function xRange(op: Op | '', p: Partial): Comparator[] {
  const exact = p.patch !== undefined;
  if (exact && (op === '' || op === '=')) return [{ op: '=', version: lowerOf(p) }];
  if (exact) return [{ op: op as Op, version: lowerOf(p) }];
  const upper = upperOf(p);
  switch (op) {
    case '':
    case '=':
      return upper === undefined
        ? []
        : [
            { op: '>=', version: lowerOf(p) },
            { op: '<', version: upper },
          ];
    case '>':
      if (upper === undefined) return [{ op: '<', version: v(0, 0, 0, [0]) }];
      // node-semver writes `>1.2` as `>=1.3.0` (no `-0`), so `1.3.0-beta` stays excluded.
      return [{ op: '>=', version: { ...upper, prerelease: [] } }];
    case '>=':
      return [{ op: '>=', version: lowerOf(p) }];
    case '<':
      return [
        { op: '<', version: p.major === undefined ? v(0, 0, 0, [0]) : { ...lowerOf(p), prerelease: [0] } },
      ];
    case '<=':
      return upper === undefined ? [] : [{ op: '<', version: upper }];
  }
}

function tilde(p: Partial): Comparator[] {
  if (p.major === undefined) return [];
  const upper = p.minor === undefined ? v(p.major + 1, 0, 0, [0]) : v(p.major, p.minor + 1, 0, [0]);
  return [
    { op: '>=', version: lowerOf(p) },
    { op: '<', version: upper },
  ];
}

function caret(p: Partial): Comparator[] {
  if (p.major === undefined) return [];
  let upper: SemVer;
  if (p.major > 0 || p.minor === undefined) upper = v(p.major + 1, 0, 0, [0]);
  else if (p.minor > 0 || p.patch === undefined) upper = v(0, p.minor + 1, 0, [0]);
  else upper = v(0, 0, p.patch + 1, [0]);
  return [
    { op: '>=', version: lowerOf(p) },
    { op: '<', version: upper },
  ];
}

function hyphen(from: Partial, to: Partial): Comparator[] {
  const out: Comparator[] = [];
  if (from.major !== undefined) out.push({ op: '>=', version: lowerOf(from) });
  if (to.major !== undefined) {
    if (to.patch !== undefined) out.push({ op: '<=', version: lowerOf(to) });
    else out.push({ op: '<', version: upperOf(to) as SemVer });
  }
  return out;
}

function parseSet(text: string): Comparator[] | undefined {
  const t = text.trim().replace(/(<=|>=|<|>|=|~>|~|\^)\s+/g, '$1');
  if (t === '') return [];
  const hy = /^(\S+)\s+-\s+(\S+)$/.exec(t);
  if (hy !== null) {
    const from = parsePartial(hy[1] as string);
    const to = parsePartial(hy[2] as string);
    return from === undefined || to === undefined ? undefined : hyphen(from, to);
  }
  const out: Comparator[] = [];
  for (const token of t.split(/\s+/)) {
    const m = /^(<=|>=|<|>|=|~>|~|\^)?(.*)$/.exec(token) as RegExpExecArray;
    const op = m[1] ?? '';
    const p = parsePartial(m[2] as string);
    if (p === undefined) return undefined;
    if (op === '~' || op === '~>') out.push(...tilde(p));
    else if (op === '^') out.push(...caret(p));
    else out.push(...xRange(op as Op | '', p));
  }
  return out;
}

/** Parses a node-semver range; undefined when it is not valid range syntax. */
export function parseSemverRange(text: string): SemverRange | undefined {
  if (text.length > 1024) return undefined;
  const sets: Comparator[][] = [];
  for (const part of text.split('||')) {
    const set = parseSet(part);
    if (set === undefined) return undefined;
    sets.push(set);
  }
  return { raw: text, sets };
}

function test(c: Comparator, version: SemVer): boolean {
  const r = compareSemverParsed(version, c.version);
  switch (c.op) {
    case '<':
      return r < 0;
    case '<=':
      return r <= 0;
    case '>':
      return r > 0;
    case '>=':
      return r >= 0;
    case '=':
      return r === 0;
  }
}

function setMatches(set: readonly Comparator[], version: SemVer, includePrerelease: boolean): boolean {
  if (!set.every((c) => test(c, version))) return false;
  if (version.prerelease.length === 0 || includePrerelease) return true;
  // node-semver: a prerelease only matches when a comparator of the same set names a prerelease
  // of the same [major, minor, patch] tuple, so `^1.2.3` never silently picks `1.3.0-beta`.
  return set.some(
    (c) =>
      c.version.prerelease.length > 0 &&
      c.version.major === version.major &&
      c.version.minor === version.minor &&
      c.version.patch === version.patch,
  );
}

/** True when `version` satisfies `range` (node-semver semantics, prereleases excluded by default). */
export function satisfiesSemver(
  version: string | SemVer,
  range: string | SemverRange,
  options: { readonly includePrerelease?: boolean } = {},
): boolean {
  const parsed = typeof version === 'string' ? parseSemver(version) : version;
  const r = typeof range === 'string' ? parseSemverRange(range) : range;
  if (parsed === undefined || r === undefined) return false;
  return r.sets.some((set) => setMatches(set, parsed, options.includePrerelease === true));
}
