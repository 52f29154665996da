import { compilePattern, compileVersionRange, exactVersions } from '../patterns.ts';
import type { Ecosystem, PolicySubject, RuleResult } from '../types.ts';

export interface ListEntry {
  readonly name: string;
  readonly versions?: string | undefined;
  readonly ecosystem?: Ecosystem | undefined;
  readonly reason?: string | undefined;
}

interface Compiled {
  readonly entry: ListEntry;
  readonly name: (name: string, ecosystem?: Ecosystem) => boolean;
  readonly versions: Map<Ecosystem, (version: string) => boolean>;
}

/** The compiled entries of one allow or deny list. */
export interface CompiledList {
  readonly entries: readonly Compiled[];
}

/**
 * Version syntax depends on the ecosystem, so ranges are compiled once per ecosystem up front:
 * an invalid range fails at validate time, not on a request. An entry naming its ecosystem must
 * be valid there; an entry without one applies in each of the rule's ecosystems whose syntax its
 * `versions` text is (`v1` is an OCI tag and an npm range, not a PEP 440 specifier) and is a
 * mistake only when it is valid in none.
 */
function compileEntry(entry: ListEntry, ecosystems: readonly Ecosystem[]): Compiled {
  const versions = new Map<Ecosystem, (version: string) => boolean>();
  if (entry.ecosystem !== undefined)
    versions.set(entry.ecosystem, compileVersionRange(entry.ecosystem, entry.versions));
  else {
    const errors: string[] = [];
    for (const eco of ecosystems) {
      try {
        versions.set(eco, compileVersionRange(eco, entry.versions));
      } catch (error) {
        if (!(error instanceof RangeError)) throw error;
        errors.push(`${eco}: ${error.message}`);
      }
    }
    if (versions.size === 0)
      throw new RangeError(
        `List entry "${entry.name}" has versions "${entry.versions ?? ''}" that are valid in none of its ecosystems (${errors.join('; ')})`,
      );
  }
  return { entry, name: compilePattern(entry.name), versions };
}

/** Compiles a list's entries once, for its evaluator and its named versions. */
export const compileList = (
  entries: readonly ListEntry[],
  ecosystems: readonly Ecosystem[],
): CompiledList => ({
  entries: entries.map((entry) => compileEntry(entry, ecosystems)),
});

/**
 * The exact versions the list's entries name for a package of an ecosystem (entries whose name
 * pattern matches it; `|`-lists of exact versions only), so a door can learn what they point at
 * (OCI: a tag's digest) before deciding.
 */
export function namedVersions(list: CompiledList, ecosystem: Ecosystem, name: string): string[] {
  const named = new Set<string>();
  for (const c of list.entries) {
    // `versions` holds only the ecosystems the entry applies in (the one it names, if any).
    if (!c.versions.has(ecosystem) || !c.name(name, ecosystem)) continue;
    for (const v of exactVersions(ecosystem, c.entry.versions)) named.add(v);
  }
  return [...named];
}

const namesOf = (s: PolicySubject) => [
  s.version,
  ...(s.digest === undefined ? [] : [s.digest]),
  ...(s.aliases ?? []),
];

/**
 * The first entry that matches the subject, and which of its names matched: its version, or
 * else its digest or an alias (one manifest by digest and by each of its tags, for OCI), so the
 * same content gets the same answer however it is asked for.
 */
function find(
  list: CompiledList,
  s: PolicySubject,
  names: readonly string[] = namesOf(s),
): { hit: Compiled; as: string } | undefined {
  for (const c of list.entries) {
    const matches = c.versions.get(s.ecosystem);
    if (matches === undefined || !c.name(s.name, s.ecosystem)) continue;
    const as = names.find((v) => matches(v));
    if (as !== undefined) return { hit: c, as };
  }
  return undefined;
}

const label = (s: PolicySubject) => `"${s.name}@${s.version}"`;
const because = (e: ListEntry) => (e.reason === undefined ? '' : `: ${e.reason}`);
const range = (e: ListEntry) => (e.versions === undefined ? '' : ` ${e.versions}`);
const through = (s: PolicySubject, as: string) => (as === s.version ? '' : ` (through "${as}")`);

/**
 * Deny list: refuses matching names and versions. It fails closed on what it cannot check: a
 * subject is refused when an entry names one of its unresolved aliases (a version that may name
 * the same content, but where it points could not be learned).
 */
export function denyListEvaluator(list: CompiledList) {
  return (subject: PolicySubject): RuleResult => {
    const found = find(list, subject);
    if (found === undefined) {
      const unresolved = subject.unresolvedAliases ?? [];
      const unknown = find(
        list,
        subject,
        unresolved.map((u) => u.version),
      );
      if (unknown === undefined)
        return { outcome: 'allow', reason: `${label(subject)} is not on the deny list` };
      const { entry } = unknown.hit;
      const why = unresolved.find((u) => u.version === unknown.as)?.reason ?? '';
      return {
        outcome: 'deny',
        reason: `${label(subject)} cannot be checked against the deny list entry "${entry.name}${range(entry)}": where "${unknown.as}" points is unknown (${why})`,
        details: { unresolved: unknown.as },
      };
    }
    const { entry } = found.hit;
    return {
      outcome: 'deny',
      reason: `${label(subject)}${through(subject, found.as)} is on the deny list as "${entry.name}${range(entry)}"${because(entry)}`,
    };
  };
}

/** Allow list: `exempt` lets listed packages bypass other rules; `only` refuses unlisted ones. */
export function allowListEvaluator(list: CompiledList, mode: 'exempt' | 'only') {
  return (subject: PolicySubject): RuleResult => {
    const found = find(list, subject);
    if (found !== undefined) {
      const { entry } = found.hit;
      return {
        outcome: 'allow',
        final: mode === 'exempt',
        reason: `${label(subject)}${through(subject, found.as)} is on the allow list as "${entry.name}${range(entry)}"${because(entry)}`,
      };
    }
    if (mode === 'only') return { outcome: 'deny', reason: `${label(subject)} is not on the allow list` };
    return { outcome: 'allow', reason: `${label(subject)} is not on the allow list; other rules decide` };
  };
}
