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

function find(list: readonly Compiled[], s: PolicySubject): Compiled | undefined {
  return list.find(
    (c) =>
      (c.entry.ecosystem === undefined || c.entry.ecosystem === s.ecosystem) &&
      c.name(s.name, s.ecosystem) &&
      (c.versions.get(s.ecosystem)?.(s.version) ?? false),
  );
}

const label = (s: PolicySubject) => `"${s.name}@${s.version}"`;
const because = (e: ListEntry) => (e.reason === undefined ? '' : `: ${e.reason}`);
const range = (e: ListEntry) => (e.versions === undefined ? '' : ` ${e.versions}`);

/** Deny list: refuses matching names and versions. */
export function denyListEvaluator(entries: readonly ListEntry[], ecosystems: readonly Ecosystem[]) {
  const list = compile(entries, ecosystems);
  return (subject: PolicySubject): RuleResult => {
    const hit = find(list, subject);
    if (hit === undefined) return { outcome: 'allow', reason: `${label(subject)} is not on the deny list` };
    return {
      outcome: 'deny',
      reason: `${label(subject)} is on the deny list as "${hit.entry.name}${range(hit.entry)}"${because(hit.entry)}`,
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
    const hit = find(list, subject);
    if (hit !== undefined) {
      return {
        outcome: 'allow',
        final: mode === 'exempt',
        reason: `${label(subject)} is on the allow list as "${hit.entry.name}${range(hit.entry)}"${because(hit.entry)}`,
      };
    }
    if (mode === 'only') return { outcome: 'deny', reason: `${label(subject)} is not on the allow list` };
    return { outcome: 'allow', reason: `${label(subject)} is not on the allow list; other rules decide` };
  };
}
