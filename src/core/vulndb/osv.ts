/**
 * The OSV schema (ossf.github.io/osv-schema, 1.6) and range evaluation per its "Evaluation"
 * section: SEMVER ranges with npm semver, ECOSYSTEM ranges with the ecosystem's comparator,
 * GIT ranges skipped (they name commits, not package versions), plus explicit version lists.
 */
import { compareSeverity, parseCvss, parseSeverityLabel, type Severity, severityOfScore } from './cvss.ts';
import { compareGoParsed, parseGoVersion } from './versions/go.ts';
import { compareMavenParsed, parseMavenVersion } from './versions/maven.ts';
import { comparePep440Parsed, normalizePypiName, parsePep440 } from './versions/pep440.ts';
import { compareSemverParsed, parseSemver } from './versions/semver.ts';

/** One range event; exactly one key is set. */
export interface OsvEvent {
  readonly introduced?: string;
  readonly fixed?: string;
  readonly last_affected?: string;
  readonly limit?: string;
}

export interface OsvRange {
  readonly type: 'SEMVER' | 'ECOSYSTEM' | 'GIT';
  readonly repo?: string;
  readonly events: readonly OsvEvent[];
}

export interface OsvSeverity {
  readonly type: string;
  readonly score: string;
}

export interface OsvAffected {
  readonly package?: { readonly ecosystem: string; readonly name: string; readonly purl?: string };
  readonly ranges?: readonly OsvRange[];
  readonly versions?: readonly string[];
  readonly severity?: readonly OsvSeverity[];
  readonly database_specific?: Readonly<Record<string, unknown>>;
  readonly ecosystem_specific?: Readonly<Record<string, unknown>>;
}

/** One OSV record. */
export interface OsvRecord {
  readonly schema_version?: string;
  readonly id: string;
  readonly modified: string;
  readonly published?: string;
  readonly withdrawn?: string;
  readonly aliases?: readonly string[];
  readonly summary?: string;
  readonly details?: string;
  readonly severity?: readonly OsvSeverity[];
  readonly affected?: readonly OsvAffected[];
  readonly database_specific?: Readonly<Record<string, unknown>>;
}

/** A version ordering for one ecosystem; `parse` returns undefined for foreign syntax. */
export interface VersionScheme<V = unknown> {
  parse(text: string): V | undefined;
  compare(a: V, b: V): number;
}

const SEMVER_SCHEME: VersionScheme = {
  parse: parseSemver,
  compare: compareSemverParsed as (a: unknown, b: unknown) => number,
};
const PEP440_SCHEME: VersionScheme = {
  parse: parsePep440,
  compare: comparePep440Parsed as (a: unknown, b: unknown) => number,
};

/** Erases a typed comparator pair into a scheme. */
const scheme = <V>(parse: (t: string) => V | undefined, compare: (a: V, b: V) => number): VersionScheme => ({
  parse,
  compare: compare as (a: unknown, b: unknown) => number,
});
const GO_SCHEME = scheme(parseGoVersion, compareGoParsed);
const MAVEN_SCHEME = scheme(parseMavenVersion, compareMavenParsed);

/** OSV ecosystem names (`npm`, `PyPI`, …) of the ecosystems Gatehouse understands. */
export const OSV_ECOSYSTEMS = { npm: 'npm', pypi: 'PyPI', go: 'Go', maven: 'Maven' } as const;

/** The version scheme used for ECOSYSTEM ranges of an OSV ecosystem, if Gatehouse has one. */
export function schemeFor(osvEcosystem: string): VersionScheme | undefined {
  if (osvEcosystem === 'npm') return SEMVER_SCHEME;
  if (osvEcosystem === 'Go') return GO_SCHEME;
  if (osvEcosystem === 'Maven') return MAVEN_SCHEME;
  if (osvEcosystem === 'PyPI') return PEP440_SCHEME;
  return undefined;
}

/** Normalizes a package name the way the ecosystem compares them. */
export function normalizePackageName(osvEcosystem: string, name: string): string {
  return osvEcosystem === 'PyPI' ? normalizePypiName(name) : name;
}

function eventVersion(e: OsvEvent): string | undefined {
  return e.introduced ?? e.fixed ?? e.last_affected ?? e.limit;
}

/**
 * Evaluates one SEMVER or ECOSYSTEM range. Events are sorted by version (introduced "0" first);
 * the state after the last event not above the version decides; `limit` bounds the range.
 */
export function rangeAffects(range: OsvRange, version: unknown, scheme: VersionScheme): boolean {
  const parsed: { kind: keyof OsvEvent; at: unknown; zero: boolean }[] = [];
  const limits: unknown[] = [];
  for (const e of range.events) {
    const text = eventVersion(e);
    if (text === undefined) continue;
    const kind = (Object.keys(e) as (keyof OsvEvent)[])[0] as keyof OsvEvent;
    if (kind === 'introduced' && text === '0') {
      parsed.push({ kind, at: undefined, zero: true });
      continue;
    }
    const at = scheme.parse(text);
    // An event this scheme cannot order is ignored rather than guessed (fail towards the record).
    if (at === undefined) continue;
    if (kind === 'limit') limits.push(at);
    else parsed.push({ kind, at, zero: false });
  }
  // At equal versions `introduced` sorts first, so introduced == fixed describes an empty range.
  const rank = (k: keyof OsvEvent) => (k === 'introduced' ? 0 : 1);
  parsed.sort((a, b) => {
    if (a.zero || b.zero) return a.zero === b.zero ? 0 : a.zero ? -1 : 1;
    return scheme.compare(a.at, b.at) || rank(a.kind) - rank(b.kind);
  });
  let affected = false;
  for (const e of parsed) {
    if (e.kind === 'introduced' && (e.zero || scheme.compare(version, e.at) >= 0)) affected = true;
    else if (e.kind === 'fixed' && scheme.compare(version, e.at) >= 0) affected = false;
    else if (e.kind === 'last_affected' && scheme.compare(version, e.at) > 0) affected = false;
  }
  if (affected && limits.length > 0) affected = limits.some((l) => scheme.compare(version, l) < 0);
  return affected;
}

/** True when `version` of the package is affected by this `affected[]` entry. */
export function affectedEntryMatches(entry: OsvAffected, version: string): boolean {
  if (entry.versions?.includes(version) === true) return true;
  const eco = entry.package?.ecosystem ?? '';
  const ecoScheme = schemeFor(eco.split(':')[0] ?? eco);
  // Listed versions are compared parsed, as the ecosystem compares them: Go's with or without
  // the `v` the go command prints, PyPI's `2.0` and `2.0.0` or `1.0rc1` and `1.0.RC1` (PEP 440),
  // Maven's `1.0` and `1.0.0`.
  if (ecoScheme !== undefined && entry.versions !== undefined && entry.versions.length > 0) {
    const v = ecoScheme.parse(version);
    if (v !== undefined && parsedVersions(entry, ecoScheme).some((p) => ecoScheme.compare(p, v) === 0))
      return true;
  }
  for (const range of entry.ranges ?? []) {
    const scheme =
      range.type === 'SEMVER' ? SEMVER_SCHEME : range.type === 'ECOSYSTEM' ? ecoScheme : undefined;
    if (scheme === undefined) continue;
    const v = scheme.parse(version);
    if (v !== undefined && rangeAffects(range, v, scheme)) return true;
  }
  return false;
}

const parsedLists = new WeakMap<OsvAffected, readonly unknown[]>();

/** An entry's listed versions, parsed once (records are immutable once loaded). */
function parsedVersions(entry: OsvAffected, by: VersionScheme): readonly unknown[] {
  let parsed = parsedLists.get(entry);
  if (parsed === undefined) {
    parsed = (entry.versions ?? []).map((e) => by.parse(e)).filter((p) => p !== undefined);
    parsedLists.set(entry, parsed);
  }
  return parsed;
}

/** The versions named by `fixed` events of an entry. */
export function fixedVersions(entry: OsvAffected): string[] {
  const out: string[] = [];
  for (const r of entry.ranges ?? []) {
    if (r.type === 'GIT') continue;
    for (const e of r.events) if (e.fixed !== undefined) out.push(e.fixed);
  }
  return out;
}

/** The facts of one advisory that policy needs, derived once per record. */
export interface AdvisorySummary {
  readonly id: string;
  readonly aliases: readonly string[];
  readonly summary: string;
  readonly severity: Severity | 'unknown';
  /** The highest CVSS v3 base score found, when any vector had one. */
  readonly score?: number;
  readonly vectors: readonly string[];
  readonly modified: string;
}

function severityOf(
  record: OsvRecord,
  entry?: OsvAffected,
): { severity: Severity | 'unknown'; score?: number } {
  const vectors = [...(record.severity ?? []), ...(entry?.severity ?? [])];
  let best: Severity | undefined;
  let score: number | undefined;
  for (const s of vectors) {
    const parsed = parseCvss(s.score);
    if (parsed?.baseScore !== undefined) {
      score = Math.max(score ?? 0, parsed.baseScore);
      const sev = severityOfScore(parsed.baseScore);
      if (best === undefined || compareSeverity(sev, best) > 0) best = sev;
    }
  }
  const label =
    parseSeverityLabel(entry?.database_specific?.['severity']) ??
    parseSeverityLabel(record.database_specific?.['severity']);
  if (label !== undefined && (best === undefined || compareSeverity(label, best) > 0)) best = label;
  return { severity: best ?? 'unknown', ...(score === undefined ? {} : { score }) };
}

/** Summarizes a record for policy decisions. */
export function summarizeAdvisory(record: OsvRecord, entry?: OsvAffected): AdvisorySummary {
  return {
    id: record.id,
    aliases: record.aliases ?? [],
    summary: record.summary ?? '',
    ...severityOf(record, entry),
    vectors: [...(record.severity ?? []), ...(entry?.severity ?? [])].map((s) => s.score),
    modified: record.modified,
  };
}

/** Validates the shape of a parsed JSON document as an OSV record; undefined when it is not one. */
export function asOsvRecord(value: unknown): OsvRecord | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const r = value as Record<string, unknown>;
  if (typeof r['id'] !== 'string' || r['id'] === '' || typeof r['modified'] !== 'string') return undefined;
  if (r['affected'] !== undefined && !Array.isArray(r['affected'])) return undefined;
  for (const a of (r['affected'] as unknown[] | undefined) ?? []) {
    if (typeof a !== 'object' || a === null) return undefined;
    const ranges = (a as Record<string, unknown>)['ranges'];
    if (ranges !== undefined && !Array.isArray(ranges)) return undefined;
    for (const range of (ranges as unknown[] | undefined) ?? []) {
      const events = (range as Record<string, unknown> | null)?.['events'];
      if (!Array.isArray(events)) return undefined;
    }
  }
  return value as OsvRecord;
}
