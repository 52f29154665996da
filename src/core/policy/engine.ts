import { createHash } from 'node:crypto';
import type { Clock } from '#core/clock';
import { buildRuleTable, type RuleTable } from './build.ts';
import type { PolicyConfig } from './config.ts';
import type {
  Ecosystem,
  PackageVulnerabilities,
  PolicyContext,
  PolicyDecision,
  PolicySubject,
  Rule,
  RuleEvaluation,
  VulnerabilitySource,
} from './types.ts';

/** An immutable, compiled policy; a reload builds a new one and swaps it. */
export interface PolicyEngine {
  /** Hash of the configuration and extra rules. */
  readonly version: string;
  /**
   * What decisions depend on: the version and the vulnerability data's generation. Part of every
   * cache key of filtered metadata, so an import re-decides cached and stale metadata at once.
   */
  stamp(): Promise<string>;
  /** The rules that apply to a registry, in order. */
  rulesFor(registry?: string): readonly Rule[];
  /**
   * The exact versions the rules of a registry name for a package (list entries whose name
   * pattern matches it), so a door can learn what they point at before deciding: the OCI door
   * resolves the tags they name, so a manifest pulled first by digest or another tag is decided
   * with every named tag that points at it.
   */
  namedVersions(ecosystem: Ecosystem, name: string, registry?: string): readonly string[];
  evaluate(subject: PolicySubject, options?: EvaluateOptions): Promise<PolicyDecision>;
  /** Evaluates many versions, sharing one vulnerability lookup per package. */
  evaluateMany(subjects: readonly PolicySubject[], options?: EvaluateOptions): Promise<PolicyDecision[]>;
  /**
   * Starts loading what the rules will need for a package (its advisories) so that a later
   * evaluation finds it ready; a door calls this before a long download. Never rejects.
   */
  prepare(ecosystem: Ecosystem, name: string): void;
}

export interface EvaluateOptions {
  readonly signal?: AbortSignal;
  /** Evaluation time; defaults to the engine's clock. */
  readonly now?: number;
}

export interface PolicyEngineOptions {
  readonly clock: Clock;
  readonly vulnerabilities?: VulnerabilitySource;
  /** Rules supplied in code by a door, appended after the configured ones. */
  readonly extraRules?: readonly Rule[];
}

const NO_SOURCE: PackageVulnerabilities = {
  available: false,
  unavailableReason: 'no vulnerability database is configured',
  affecting: () => [],
  fixedBy: () => [],
};

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The policy version: a short hash of the canonical configuration and the extra rule ids. */
export function policyVersionOf(config: PolicyConfig, extra: readonly Rule[] = []): string {
  const text = canonical({ config, extra: extra.map((r) => r.id) });
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** Longest stretch of evaluation between two turns of the event loop. */
const YIELD_AFTER_MS = 10;

function combine(results: readonly RuleEvaluation[]): 'allow' | 'warn' | 'deny' {
  if (results.some((r) => r.final === true && r.outcome === 'allow')) return 'allow' as const;
  // Ungrouped rules are each their own group; a group passes when any member does not deny.
  const groups = new Map<string, RuleEvaluation[]>();
  for (const r of results) {
    const key = r.group === undefined ? `rule:${r.ruleId}` : `group:${r.group}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  let outcome: 'allow' | 'warn' | 'deny' = 'allow';
  for (const members of groups.values()) {
    const passing = members.filter((m) => m.outcome !== 'deny');
    if (passing.length === 0) return 'deny' as const;
    if (passing.every((m) => m.outcome === 'warn')) outcome = 'warn';
  }
  return outcome;
}

async function runRule(rule: Rule, subject: PolicySubject, ctx: PolicyContext): Promise<RuleEvaluation> {
  const base = {
    ruleId: rule.id,
    ruleName: rule.name,
    ...(rule.group === undefined ? {} : { group: rule.group }),
  };
  try {
    return { ...base, ...(await rule.evaluate(subject, ctx)) };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return {
      ...base,
      outcome: rule.onError,
      reason: `Rule "${rule.id}" failed (${message}); treated as ${rule.onError}`,
      error: message,
    };
  }
}

function decide(
  subject: PolicySubject,
  results: RuleEvaluation[],
  version: string,
  now: number,
  dbUpdatedAt: number | undefined,
): PolicyDecision {
  const outcome = combine(results);
  const denials = results.filter((r) => r.outcome === 'deny');
  const warnings = results.filter((r) => r.outcome === 'warn');
  const shown = outcome === 'deny' ? denials : outcome === 'warn' ? warnings : [];
  const reason =
    shown.length > 0
      ? shown.map((r) => r.reason).join('; ')
      : `"${subject.name}@${subject.version}" passed every rule`;
  const temporary = outcome === 'deny' && denials.every((d) => d.allowAt !== undefined);
  const allowAt = temporary ? Math.max(...denials.map((d) => d.allowAt as number)) : undefined;
  return {
    subject,
    outcome,
    allowed: outcome !== 'deny',
    reason,
    results,
    policyVersion: version,
    evaluatedAt: now,
    ...(allowAt === undefined ? {} : { allowAt }),
    ...(dbUpdatedAt === undefined ? {} : { databaseUpdatedAt: dbUpdatedAt }),
  };
}

/** Compiles a configuration into an engine; throws RangeError/TypeError on configuration mistakes. */
export function createPolicyEngine(config: PolicyConfig, options: PolicyEngineOptions): PolicyEngine {
  const extra = options.extraRules ?? [];
  const table: RuleTable = buildRuleTable(config, extra);
  const version = policyVersionOf(config, extra);
  const rulesFor = (registry?: string) =>
    (registry === undefined ? undefined : table.byRegistry.get(registry)) ?? table.global;

  const evaluateMany = async (subjects: readonly PolicySubject[], opts: EvaluateOptions = {}) => {
    const now = opts.now ?? options.clock.now();
    const memo = new Map<string, Promise<PackageVulnerabilities>>();
    const lookup = (s: PolicySubject): Promise<PackageVulnerabilities> => {
      const key = `${s.ecosystem}\u0000${s.name}`;
      let p = memo.get(key);
      if (p === undefined) {
        p =
          options.vulnerabilities?.forPackage(s.ecosystem as Ecosystem, s.name, opts.signal) ??
          Promise.resolve(NO_SOURCE);
        memo.set(key, p);
      }
      return p;
    };
    const out: PolicyDecision[] = [];
    let slice = performance.now();
    for (const subject of subjects) {
      // Yield to the event loop after each slice of work: a packument can list thousands of
      // versions, and awaiting resolved promises alone never lets other requests run. Slicing by
      // time rather than by count keeps a cold fetch from waiting behind other callbacks more
      // often than the event loop needs.
      if (performance.now() - slice >= YIELD_AFTER_MS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        slice = performance.now();
      }
      let dbUpdatedAt: number | undefined;
      const ctx: PolicyContext = {
        now,
        ...(opts.signal === undefined ? {} : { signal: opts.signal }),
        vulnerabilities: async (s) => {
          const v = await lookup(s);
          dbUpdatedAt = v.updatedAt;
          return v;
        },
      };
      const rules = rulesFor(subject.registry).filter((r) => r.appliesTo(subject));
      const results = await Promise.all(rules.map((r) => runRule(r, subject, ctx)));
      out.push(decide(subject, results, version, now, dbUpdatedAt));
    }
    return out;
  };

  return {
    version,
    stamp: async () => {
      const generation = await options.vulnerabilities?.generation?.().catch(() => 'unavailable');
      return generation === undefined ? version : `${version}.${generation}`;
    },
    rulesFor,
    namedVersions: (ecosystem, name, registry) => [
      ...new Set(rulesFor(registry).flatMap((r) => r.namedVersions?.(ecosystem, name) ?? [])),
    ],
    evaluateMany,
    prepare: (ecosystem, name) => {
      options.vulnerabilities?.forPackage(ecosystem, name).catch(() => undefined);
    },
    evaluate: async (subject, opts) => (await evaluateMany([subject], opts))[0] as PolicyDecision,
  };
}
