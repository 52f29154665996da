import { compilePattern, compileVersionRange } from '../patterns.ts';
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

const compile = (entries: readonly ListEntry[], ecosystems: readonly Ecosystem[]): Compiled[] =>
  entries.map((entry) => compileEntry(entry, ecosystems));

/**
 * The first entry that matches the subject, and which of its names matched: its version, or
 * else its digest or an alias (one manifest by digest and by each of its tags, for OCI), so the
 * same content gets the same answer however it is asked for.
 */
function find(list: readonly Compiled[], s: PolicySubject): { hit: Compiled; as: string } | undefined {
  const names = [s.version, ...(s.digest === undefined ? [] : [s.digest]), ...(s.aliases ?? [])];
  for (const c of list) {
    if (c.entry.ecosystem !== undefined && c.entry.ecosystem !== s.ecosystem) continue;
    if (!c.name(s.name, s.ecosystem)) continue;
    const matches = c.versions.get(s.ecosystem);
    const as = matches === undefined ? undefined : names.find((v) => matches(v));
    if (as !== undefined) return { hit: c, as };
  }
  return undefined;
}

const label = (s: PolicySubject) => `"${s.name}@${s.version}"`;
const because = (e: ListEntry) => (e.reason === undefined ? '' : `: ${e.reason}`);
const range = (e: ListEntry) => (e.versions === undefined ? '' : ` ${e.versions}`);
const through = (s: PolicySubject, as: string) => (as === s.version ? '' : ` (through "${as}")`);

/** Deny list: refuses matching names and versions. */
export function denyListEvaluator(entries: readonly ListEntry[], ecosystems: readonly Ecosystem[]) {
  const list = compile(entries, ecosystems);
  return (subject: PolicySubject): RuleResult => {
    const found = find(list, subject);
    if (found === undefined) return { outcome: 'allow', reason: `${label(subject)} is not on the deny list` };
    const { entry } = found.hit;
    return {
      outcome: 'deny',
      reason: `${label(subject)}${through(subject, found.as)} is on the deny list as "${entry.name}${range(entry)}"${because(entry)}`,
    };
  };
}

/** Allow list: `exempt` lets listed packages bypass other rules; `only` refuses unlisted ones. */
export function allowListEvaluator(
  entries: readonly ListEntry[],
  ecosystems: readonly Ecosystem[],
  mode: 'exempt' | 'only',
) {
  const list = compile(entries, ecosystems);
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
