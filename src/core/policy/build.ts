import { type PolicyConfig, type RuleConfig } from './config.ts';
import {
  allowListEvaluator,
  type CompiledList,
  compileList,
  denyListEvaluator,
  namedVersions,
} from './rules/lists.ts';
import { minimumAgeEvaluator } from './rules/minimum-age.ts';
import { vulnerabilityEvaluator } from './rules/vulnerability.ts';
import {
  ECOSYSTEMS,
  type Ecosystem,
  type PolicyContext,
  type PolicySubject,
  type Rule,
  type RuleResult,
} from './types.ts';

const NAMES = {
  minimumAge: 'Minimum age',
  vulnerability: 'Known vulnerabilities',
  allowList: 'Allow list',
  denyList: 'Deny list',
} as const;

function parseExpiry(text: string | undefined, ruleId: string): number | undefined {
  if (text === undefined) return undefined;
  // A bare date means the whole of that day (UTC) is still covered.
  const t = /^\d{4}-\d{2}-\d{2}$/.test(text) ? Date.parse(`${text}T23:59:59.999Z`) : Date.parse(text);
  if (!Number.isFinite(t)) throw new RangeError(`Rule "${ruleId}" has an invalid expiry "${text}"`);
  return t;
}

function evaluatorOf(
  c: RuleConfig,
  list: CompiledList,
): (s: PolicySubject, ctx: PolicyContext) => RuleResult | Promise<RuleResult> {
  switch (c.type) {
    case 'minimumAge':
      return minimumAgeEvaluator({
        ageMs: c.minimumAge.age,
        exclude: c.minimumAge.exclude,
        missingTimestamp: c.minimumAge.missingTimestamp,
        allowVulnerabilityFixes: c.minimumAge.allowVulnerabilityFixes,
      });
    case 'vulnerability':
      return vulnerabilityEvaluator({
        threshold: c.vulnerability.threshold,
        unknownSeverity: c.vulnerability.unknownSeverity,
        whenUnavailable: c.vulnerability.whenUnavailable,
        accepted: c.vulnerability.allow.map((a) => {
          const expiresAt = parseExpiry(a.expires, c.id);
          return { id: a.id, reason: a.reason, ...(expiresAt === undefined ? {} : { expiresAt }) };
        }),
      });
    case 'allowList':
      return allowListEvaluator(list, c.list.mode);
    case 'denyList':
      return denyListEvaluator(list);
  }
}

/** Builds one Rule from its configuration; throws RangeError on invalid ranges or dates. */
export function buildRule(c: RuleConfig): Rule {
  const ecosystems: readonly Ecosystem[] = c.ecosystems.length === 0 ? ECOSYSTEMS : c.ecosystems;
  const applies = new Set<Ecosystem>(ecosystems);
  const isList = c.type === 'allowList' || c.type === 'denyList';
  const list = compileList(isList ? c.list.entries : [], ecosystems);
  return {
    id: c.id,
    name: c.name ?? NAMES[c.type],
    onError: c.onError,
    ...(c.group === undefined ? {} : { group: c.group }),
    appliesTo: (s) => applies.has(s.ecosystem),
    evaluate: evaluatorOf(c, list),
    // Only list rules name versions (the engine skips rules without it).
    ...(isList
      ? {
          namedVersions: (ecosystem: Ecosystem, name: string) =>
            applies.has(ecosystem) ? namedVersions(list, ecosystem, name) : [],
        }
      : {}),
  };
}

function checkUnique(rules: readonly RuleConfig[], where: string): void {
  const seen = new Set<string>();
  for (const r of rules) {
    if (seen.has(r.id)) throw new RangeError(`Duplicate rule id "${r.id}" in ${where}`);
    seen.add(r.id);
  }
}

/** The ordered rule list of each registry: globals minus exclusions, overrides in place, additions last. */
export interface RuleTable {
  readonly global: readonly Rule[];
  readonly byRegistry: ReadonlyMap<string, readonly Rule[]>;
}

/** Compiles a whole policy configuration; every mistake surfaces here, at validate time. */
export function buildRuleTable(config: PolicyConfig, extra: readonly Rule[] = []): RuleTable {
  checkUnique(config.rules, 'policy.rules');
  const enabled = (r: RuleConfig) => r.enabled;
  const global = [...config.rules.filter(enabled).map(buildRule), ...extra];
  const byRegistry = new Map<string, readonly Rule[]>();
  for (const [name, o] of Object.entries(config.registries)) {
    checkUnique(o.rules, `policy.registries.${name}.rules`);
    for (const id of o.exclude) {
      if (!config.rules.some((r) => r.id === id)) {
        throw new RangeError(`policy.registries.${name}.exclude names unknown rule "${id}"`);
      }
    }
    const overrides = new Map(o.rules.map((r) => [r.id, r]));
    const rules: Rule[] = [];
    for (const g of config.rules) {
      if (o.exclude.includes(g.id)) continue;
      const replaced = overrides.get(g.id) ?? g;
      overrides.delete(g.id);
      if (replaced.enabled) rules.push(buildRule(replaced));
    }
    for (const added of overrides.values()) if (added.enabled) rules.push(buildRule(added));
    byRegistry.set(name, [...rules, ...extra]);
  }
  return { global, byRegistry };
}
