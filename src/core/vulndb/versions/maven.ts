/**
 * Maven version ordering: the semantics of Maven's `ComparableVersion` (maven-artifact, the
 * "Version Order Specification" of the POM reference), which OSV names for `Maven` ECOSYSTEM
 * ranges. Written here because the order is what decides whether a version is inside an
 * advisory's range, and it must agree with what `mvn` resolves.
 */

/** One item of a parsed version: a number, a qualifier, or a nested list (after `-` or a digit/letter switch). */
export type MavenItem =
  | { readonly kind: 'int'; readonly value: bigint }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'list'; readonly items: readonly MavenItem[] };

/** A parsed Maven version. */
export interface MavenVersion {
  readonly text: string;
  readonly items: readonly MavenItem[];
}

// Known qualifiers in ascending order; "" (and its aliases ga, final, release) is the release.
const QUALIFIERS = ['alpha', 'beta', 'milestone', 'rc', 'snapshot', '', 'sp'] as const;
const RELEASE_INDEX = String(QUALIFIERS.indexOf(''));
const ALIASES: Readonly<Record<string, string>> = { ga: '', final: '', release: '', cr: 'rc' };
const SHORT: Readonly<Record<string, string>> = { a: 'alpha', b: 'beta', m: 'milestone' };

function stringItem(value: string, followedByDigit: boolean): MavenItem {
  // "a1" is alpha-1, "b1" beta-1, "m1" milestone-1; a lone "a" is just an unknown qualifier.
  const expanded = followedByDigit && value.length === 1 ? (SHORT[value] ?? value) : value;
  return { kind: 'string', value: ALIASES[expanded] ?? expanded };
}

const parseItem = (isDigit: boolean, text: string): MavenItem =>
  isDigit ? { kind: 'int', value: BigInt(text) } : stringItem(text, false);

/**
 * Unknown qualifiers sort after the known ones, among themselves lexically: the index becomes a
 * string, and "7-xyz" sorts after every single-digit index.
 */
function comparableQualifier(q: string): string {
  const i = (QUALIFIERS as readonly string[]).indexOf(q);
  return i === -1 ? `${QUALIFIERS.length}-${q}` : String(i);
}

const lexical = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function isNull(item: MavenItem): boolean {
  if (item.kind === 'int') return item.value === 0n;
  if (item.kind === 'string') return comparableQualifier(item.value) === RELEASE_INDEX;
  return item.items.length === 0;
}

/** Removes trailing null items (0, "", empty lists) up to the last non-list item. */
function normalize(list: MavenItem[]): void {
  for (let i = list.length - 1; i >= 0; i--) {
    const item = list[i] as MavenItem;
    if (isNull(item)) list.splice(i, 1);
    else if (item.kind !== 'list') break;
  }
}

/** Parses a Maven version; any text is a version (as for Maven), but empty or huge text is refused. */
export function parseMavenVersion(text: string): MavenVersion | undefined {
  if (text.length === 0 || text.length > 256 || /\s/.test(text)) return undefined;
  const version = text.toLowerCase();
  const root: MavenItem[] = [];
  const stack: MavenItem[][] = [root];
  let list = root;
  const open = () => {
    const next: MavenItem[] = [];
    list.push({ kind: 'list', items: next });
    stack.push(next);
    list = next;
  };
  let isDigit = false;
  let start = 0;
  for (let i = 0; i < version.length; i++) {
    const c = version[i] as string;
    if (c === '.' || c === '-') {
      list.push(i === start ? { kind: 'int', value: 0n } : parseItem(isDigit, version.slice(start, i)));
      start = i + 1;
      if (c === '-') open();
    } else if (c >= '0' && c <= '9') {
      if (!isDigit && i > start) {
        // "1.x1" is 1-x-1: a qualifier followed by a digit starts a list of its own (Maven 3.8+).
        if (list.length > 0) open();
        list.push(stringItem(version.slice(start, i), true));
        start = i;
        open();
      }
      isDigit = true;
    } else {
      if (isDigit && i > start) {
        list.push(parseItem(true, version.slice(start, i)));
        start = i;
        open();
      }
      isDigit = false;
    }
  }
  if (version.length > start) {
    // A trailing qualifier after "." counts as after "-" (1.0.0.X1 < 1.0.0-X2), as in Maven 3.8+.
    if (!isDigit && list.length > 0) open();
    list.push(parseItem(isDigit, version.slice(start)));
  }
  for (let l = stack.pop(); l !== undefined; l = stack.pop()) normalize(l);
  return { text, items: root };
}

function compareItem(a: MavenItem, b: MavenItem | undefined): number {
  if (a.kind === 'int') {
    if (b === undefined) return a.value === 0n ? 0 : 1;
    if (b.kind === 'int') return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
    return 1;
  }
  if (a.kind === 'string') {
    if (b === undefined) return lexical(comparableQualifier(a.value), RELEASE_INDEX);
    if (b.kind === 'string') return lexical(comparableQualifier(a.value), comparableQualifier(b.value));
    return -1;
  }
  if (b === undefined) {
    // The whole list against nothing, not just its first item (MNG-6964, Maven 3.8.7+).
    for (const item of a.items) {
      const c = compareItem(item, undefined);
      if (c !== 0) return c;
    }
    return 0;
  }
  if (b.kind === 'int') return -1;
  if (b.kind === 'string') return 1;
  return compareLists(a.items, b.items);
}

function compareLists(a: readonly MavenItem[], b: readonly MavenItem[]): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const l = a[i];
    const r = b[i];
    const c = l === undefined ? (r === undefined ? 0 : -compareItem(r, undefined)) : compareItem(l, r);
    if (c !== 0) return c;
  }
  return 0;
}

/** Orders two parsed Maven versions: negative, zero or positive. */
export function compareMavenParsed(a: MavenVersion, b: MavenVersion): number {
  return Math.sign(compareLists(a.items, b.items));
}

/** Compares two Maven version strings; throws RangeError when either is empty or too long. */
export function compareMaven(a: string, b: string): number {
  const pa = parseMavenVersion(a);
  const pb = parseMavenVersion(b);
  if (pa === undefined) throw new RangeError(`Invalid Maven version "${a}"`);
  if (pb === undefined) throw new RangeError(`Invalid Maven version "${b}"`);
  return compareMavenParsed(pa, pb);
}

/**
 * A version carrying a qualifier ordered below the release (alpha, beta, milestone, rc,
 * snapshot) is a pre-release: Maven's RELEASE and a recomputed `release` skip it.
 */
export function isMavenPrerelease(v: MavenVersion): boolean {
  const walk = (items: readonly MavenItem[]): boolean =>
    items.some((item) =>
      item.kind === 'list'
        ? walk(item.items)
        : item.kind === 'string' && lexical(comparableQualifier(item.value), RELEASE_INDEX) < 0,
    );
  return walk(v.items);
}
