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

function compile(entries: readonly ListEntry[], ecosystems: readonly Ecosystem[]): Compiled[] {
  // Version syntax depends on the ecosystem, so ranges are compiled once per ecosystem up front:
  // an invalid range fails at validate time, not on a request.
  return entries.map((entry) => {
    const versions = new Map<Ecosystem, (version: string) => boolean>();
    for (const eco of entry.ecosystem === undefined ? ecosystems : [entry.ecosystem]) {
      versions.set(eco, compileVersionRange(eco, entry.versions));
    }
    return { entry, name: compilePattern(entry.name), versions };
  });
}

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
