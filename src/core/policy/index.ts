/**
 * core/policy: the policy engine shared by the registry and artifacts doors. Rules (minimum
 * age, vulnerabilities, allow and deny lists, or a door's own) decide allow/deny/warn for one
 * version of one package; every decision keeps each rule's result and the policy version.
 * @module
 */

/** Configuration schema of the policy section and of one rule (dynamic: reloads swap the engine). */
export { type PolicyConfig, policyConfigSchema, type RuleConfig, ruleConfigSchema } from './config.ts';
/** Compiles one rule or a whole configuration (throws RangeError on mistakes). */
export { buildRule, buildRuleTable, type RuleTable } from './build.ts';
/** The compiled, immutable engine and its policy-version hash. */
export {
  createPolicyEngine,
  type EvaluateOptions,
  type PolicyEngine,
  type PolicyEngineOptions,
  policyVersionOf,
} from './engine.ts';
/** Name patterns and version ranges in each ecosystem's syntax. */
export { compilePattern, compileVersionRange, normalizeName } from './patterns.ts';
/** The reloadable holder of the current engine. */
export { createPolicyService, type PolicyService, type PolicyServiceOptions } from './service.ts';
/** Subjects, rules, results and decisions. */
export {
  ECOSYSTEMS,
  type Ecosystem,
  type PackageVulnerabilities,
  type PolicyContext,
  type PolicyDecision,
  type PolicySubject,
  type Rule,
  type RuleEvaluation,
  type RuleOutcome,
  type RuleResult,
  type VulnerabilitySource,
} from './types.ts';
