/**
 * Go module versions: canonical semantic versions with a `v` prefix (golang.org/x/mod/semver),
 * pseudo-versions (`v0.0.0-20191109021931-daa7c04131f5`, go.dev/ref/mod#pseudo-versions) and
 * `+incompatible`. Pseudo-versions are SemVer pre-releases and `+incompatible` is build metadata,
 * so precedence is SemVer precedence; OSV's `Go` ecosystem writes versions without the `v`.
 */
import { compareSemverParsed, parseSemver, type SemVer } from './semver.ts';

/** A parsed Go module version. */
export interface GoVersion extends SemVer {
  /** True for `+incompatible` (a v2+ version of a module without a go.mod major suffix). */
  readonly incompatible: boolean;
}

// go.dev/ref/mod#versions: no leading zeros, and only `+incompatible` as build metadata in modules.
const CANONICAL =
  /^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-(0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(\.(0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*)?(\+incompatible)?$/;
const PSEUDO = /^v\d+\.(0\.0-|\d+\.\d+-([^+]*\.)?0\.)(\d{14})-[A-Za-z0-9]+(\+incompatible)?$/;

/**
 * Parses a Go version as OSV and the go command write it: `v1.2.3`, `1.2.3` (OSV), pseudo-versions
 * and `+incompatible`; undefined for anything else (short forms like `v1.2` are not module versions).
 */
export function parseGoVersion(text: string): GoVersion | undefined {
  if (text.length > 256) return undefined;
  const withV = text.startsWith('v') ? text : `v${text}`;
  if (!CANONICAL.test(withV)) return undefined;
  const parsed = parseSemver(withV.slice(1));
  if (parsed === undefined) return undefined;
  return { ...parsed, incompatible: withV.endsWith('+incompatible') };
}

/** True when `text` is a canonical module version the go command accepts in `@v/list` and URLs. */
export function isCanonicalGoVersion(text: string): boolean {
  const v = text.startsWith('v') ? parseGoVersion(text) : undefined;
  // `+incompatible` only exists for major versions 2 and up.
  return v !== undefined && (!v.incompatible || v.major >= 2);
}

/** Orders two parsed Go versions (SemVer precedence; build metadata ignored). */
export function compareGoParsed(a: GoVersion, b: GoVersion): number {
  return compareSemverParsed(a, b);
}

/** Compares two Go version strings; throws RangeError when either is not a Go version. */
export function compareGo(a: string, b: string): number {
  const pa = parseGoVersion(a);
  const pb = parseGoVersion(b);
  if (pa === undefined) throw new RangeError(`Invalid Go version "${a}"`);
  if (pb === undefined) throw new RangeError(`Invalid Go version "${b}"`);
  return compareGoParsed(pa, pb);
}

/** True for a pseudo-version (a commit without a tag). */
export function isGoPseudoVersion(text: string): boolean {
  return PSEUDO.test(text);
}

/** The commit time (epoch ms, UTC) a pseudo-version encodes; undefined for other versions. */
export function goPseudoVersionTime(text: string): number | undefined {
  const m = PSEUDO.exec(text);
  if (m === null) return undefined;
  const t = m[3] as string;
  const iso = `${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)}T${t.slice(8, 10)}:${t.slice(10, 12)}:${t.slice(12, 14)}Z`;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms : undefined;
}

/** A pre-release (pseudo-versions included): `@latest` prefers releases when there are any. */
export function isGoPrerelease(v: GoVersion): boolean {
  return v.prerelease.length > 0;
}
