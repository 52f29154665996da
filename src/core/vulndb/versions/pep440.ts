/**
 * PEP 440 versions and specifiers (the ordering pip uses), written here so that OSV
 * `ECOSYSTEM` ranges for PyPI and policy version lists follow the spec, not semver.
 */

/** A parsed PEP 440 version in its normalized parts. */
export interface Pep440Version {
  readonly epoch: number;
  readonly release: readonly number[];
  /** `['a'|'b'|'rc', n]` or undefined. */
  readonly pre?: readonly ['a' | 'b' | 'rc', number];
  readonly post?: number;
  readonly dev?: number;
  /** Local segments (`+ubuntu.1` → `['ubuntu', 1]`). */
  readonly local: readonly (string | number)[];
}

// The permissive pattern of PEP 440 appendix B (the same one the `packaging` library uses).
const VERSION_RE =
  /^\s*v?(?:(?:(\d+)!)?(\d+(?:\.\d+)*)(?:[-_.]?(alpha|a|beta|b|preview|pre|c|rc)[-_.]?(\d+)?)?(?:(?:-(\d+))|(?:[-_.]?(post|rev|r)[-_.]?(\d+)?))?(?:[-_.]?(dev)[-_.]?(\d+)?)?)(?:\+([a-z0-9]+(?:[-_.][a-z0-9]+)*))?\s*$/i;

function preLabel(text: string): 'a' | 'b' | 'rc' {
  const t = text.toLowerCase();
  if (t === 'alpha' || t === 'a') return 'a';
  if (t === 'beta' || t === 'b') return 'b';
  return 'rc';
}

/** Parses a version; undefined when it is not valid PEP 440. */
export function parsePep440(text: string): Pep440Version | undefined {
  if (text.length > 256) return undefined;
  const m = VERSION_RE.exec(text);
  if (m === null) return undefined;
  const nums = (m[2] as string).split('.').map(Number);
  if (nums.some((n) => !Number.isSafeInteger(n))) return undefined;
  const out: {
    epoch: number;
    release: number[];
    pre?: ['a' | 'b' | 'rc', number];
    post?: number;
    dev?: number;
    local: (string | number)[];
  } = { epoch: m[1] === undefined ? 0 : Number(m[1]), release: nums, local: [] };
  if (m[3] !== undefined) out.pre = [preLabel(m[3]), m[4] === undefined ? 0 : Number(m[4])];
  if (m[5] !== undefined) out.post = Number(m[5]);
  else if (m[6] !== undefined) out.post = m[7] === undefined ? 0 : Number(m[7]);
  if (m[8] !== undefined) out.dev = m[9] === undefined ? 0 : Number(m[9]);
  if (m[10] !== undefined) {
    out.local = m[10]
      .toLowerCase()
      .split(/[-_.]/)
      .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
  }
  return out;
}

/** The normalized text form (`1.0.0-Alpha1` → `1.0.0a1`). */
export function formatPep440(v: Pep440Version): string {
  let s = v.epoch === 0 ? '' : `${v.epoch}!`;
  s += v.release.join('.');
  if (v.pre !== undefined) s += `${v.pre[0]}${v.pre[1]}`;
  if (v.post !== undefined) s += `.post${v.post}`;
  if (v.dev !== undefined) s += `.dev${v.dev}`;
  if (v.local.length > 0) s += `+${v.local.join('.')}`;
  return s;
}

const PRE_RANK = { a: 0, b: 1, rc: 2 } as const;

function compareRelease(a: readonly number[], b: readonly number[]): number {
  // Trailing zeros are insignificant: 1.0 == 1.0.0.
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/**
 * The pre-release key of `packaging`'s _cmpkey: a dev-only release sorts before its
 * pre-releases, a final release after them.
 */
function preKey(v: Pep440Version): number[] {
  if (v.pre === undefined && v.post === undefined && v.dev !== undefined) return [-1];
  if (v.pre === undefined) return [3];
  return [PRE_RANK[v.pre[0]], v.pre[1]];
}

const postKey = (v: Pep440Version): number[] => (v.post === undefined ? [-1] : [v.post]);
const devKey = (v: Pep440Version): number[] => (v.dev === undefined ? [Number.POSITIVE_INFINITY] : [v.dev]);

function compareArrays(a: readonly number[], b: readonly number[]): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i] ?? Number.NEGATIVE_INFINITY;
    const y = b[i] ?? Number.NEGATIVE_INFINITY;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

function compareLocal(a: readonly (string | number)[], b: readonly (string | number)[]): number {
  // PEP 440: numeric local segments sort after alphanumeric ones; a longer local wins a tie.
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i] as string | number;
    const y = b[i] as string | number;
    if (typeof x === 'number' && typeof y === 'number') {
      if (x !== y) return Math.sign(x - y);
    } else if (typeof x === 'number') return 1;
    else if (typeof y === 'number') return -1;
    else if (x !== y) return x < y ? -1 : 1;
  }
  return Math.sign(a.length - b.length);
}

/** Orders two parsed versions. */
export function comparePep440Parsed(a: Pep440Version, b: Pep440Version): number {
  return (
    Math.sign(a.epoch - b.epoch) ||
    compareRelease(a.release, b.release) ||
    compareArrays(preKey(a), preKey(b)) ||
    compareArrays(postKey(a), postKey(b)) ||
    compareArrays(devKey(a), devKey(b)) ||
    compareLocal(a.local, b.local)
  );
}

/** Orders two version strings; throws RangeError when either is invalid. */
export function comparePep440(a: string, b: string): number {
  const pa = parsePep440(a);
  const pb = parsePep440(b);
  if (pa === undefined) throw new RangeError(`Invalid PEP 440 version "${a}"`);
  if (pb === undefined) throw new RangeError(`Invalid PEP 440 version "${b}"`);
  return comparePep440Parsed(pa, pb);
}

/** True for a/b/rc or dev releases. */
export const isPep440Prerelease = (v: Pep440Version): boolean => v.pre !== undefined || v.dev !== undefined;

const publicOf = (v: Pep440Version): Pep440Version => ({ ...v, local: [] });

interface Clause {
  readonly op: '~=' | '==' | '!=' | '<=' | '>=' | '<' | '>' | '===';
  readonly text: string;
  readonly version: Pep440Version | undefined;
  readonly wildcard: boolean;
}

function matchPrefix(candidate: Pep440Version, prefix: Pep440Version): boolean {
  // `==1.2.*` compares the release segments given, after normalizing the candidate (PEP 440).
  if (candidate.epoch !== prefix.epoch) return false;
  return prefix.release.every((n, i) => (candidate.release[i] ?? 0) === n);
}

function clauseMatches(c: Clause, v: Pep440Version): boolean {
  if (c.op === '===') return formatPep440(v) === c.text.trim().toLowerCase();
  const spec = c.version as Pep440Version;
  const pub = publicOf(v);
  const cmp = comparePep440Parsed(spec.local.length === 0 ? pub : v, spec);
  switch (c.op) {
    case '==':
      return c.wildcard ? matchPrefix(v, spec) : cmp === 0;
    case '!=':
      return c.wildcard ? !matchPrefix(v, spec) : cmp !== 0;
    case '<=':
      return comparePep440Parsed(pub, spec) <= 0;
    case '>=':
      return comparePep440Parsed(pub, spec) >= 0;
    case '<':
      // `<V` excludes pre-releases of V unless V is itself a pre-release (PEP 440 exclusive ordered comparison).
      if (comparePep440Parsed(pub, spec) >= 0) return false;
      return (
        isPep440Prerelease(spec) || !isPep440Prerelease(v) || compareRelease(v.release, spec.release) !== 0
      );
    case '>':
      if (comparePep440Parsed(pub, spec) <= 0) return false;
      if (spec.post === undefined && v.post !== undefined && compareRelease(v.release, spec.release) === 0)
        return false;
      return true;
    case '~=': {
      const prefix: Pep440Version = { epoch: spec.epoch, release: spec.release.slice(0, -1), local: [] };
      return comparePep440Parsed(pub, spec) >= 0 && matchPrefix(v, prefix);
    }
  }
}

/** A parsed specifier set such as `>=1.0,<2,!=1.5.*`. */
export interface Pep440Specifier {
  readonly raw: string;
  readonly clauses: readonly Clause[];
}

/** Parses a comma-separated specifier set; undefined when invalid. An empty set matches all. */
export function parsePep440Specifier(text: string): Pep440Specifier | undefined {
  if (text.length > 1024) return undefined;
  const clauses: Clause[] = [];
  for (const part of text.split(',')) {
    const t = part.trim();
    if (t === '') continue;
    const m = /^(~=|===|==|!=|<=|>=|<|>)\s*(.+)$/.exec(t);
    if (m === null) return undefined;
    const op = m[1] as Clause['op'];
    const body = (m[2] as string).trim();
    if (op === '===') {
      clauses.push({ op, text: body, version: undefined, wildcard: false });
      continue;
    }
    const wildcard = body.endsWith('.*');
    if (wildcard && op !== '==' && op !== '!=') return undefined;
    const version = parsePep440(wildcard ? body.slice(0, -2) : body);
    if (version === undefined) return undefined;
    if (op === '~=' && version.release.length < 2) return undefined;
    clauses.push({ op, text: body, version, wildcard });
  }
  return { raw: text, clauses };
}

/**
 * True when `version` satisfies every clause. Pre-releases match only when asked for or when
 * a clause names a pre-release (PEP 440 "Handling of pre-releases").
 */
export function satisfiesPep440(
  version: string | Pep440Version,
  specifier: string | Pep440Specifier,
  options: { readonly includePrerelease?: boolean } = {},
): boolean {
  const v = typeof version === 'string' ? parsePep440(version) : version;
  const s = typeof specifier === 'string' ? parsePep440Specifier(specifier) : specifier;
  if (v === undefined || s === undefined) return false;
  if (isPep440Prerelease(v) && options.includePrerelease !== true) {
    const named = s.clauses.some((c) => c.version !== undefined && isPep440Prerelease(c.version));
    if (!named) return false;
  }
  return s.clauses.every((c) => clauseMatches(c, v));
}

/** Normalizes a project name per PEP 503 (`Foo.Bar_baz` → `foo-bar-baz`). */
export function normalizePypiName(name: string): string {
  return name.replace(/[-_.]+/g, '-').toLowerCase();
}
