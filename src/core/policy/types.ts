import type { PackageAdvisories } from '#core/vulndb';

/** Ecosystems a subject can come from: the registry door's five and the artifacts door. */
export const ECOSYSTEMS = ['npm', 'pypi', 'go', 'maven', 'oci', 'artifact'] as const;
export type Ecosystem = (typeof ECOSYSTEMS)[number];

/** What a policy decides about: one version of one package (or one artifact). */
export interface PolicySubject {
  readonly ecosystem: Ecosystem;
  readonly name: string;
  readonly version: string;
  /** The registry, uplink or repository it came from; selects per-registry overrides. */
  readonly registry?: string;
  /** Publication time in epoch milliseconds, when the source states one. */
  readonly publishedAt?: number;
  /**
   * Content digest (`sha512-…`, `sha256:…`) when known. List rules match it as they match
   * `version`, so an OCI manifest pulled by tag is refused when its digest is denied.
   */
  readonly digest?: string;
  /**
   * Other versions known to name the same content (OCI: the tags known to point at the manifest
   * digest). List rules match them as they match `version`, so a manifest is refused by digest or
   * through another tag when one of its tags is denied.
   */
  readonly aliases?: readonly string[];
  /**
   * Versions that may name the same content but whose content could not be learned, each with
   * why (OCI: a tag a list entry names that the uplink could not resolve). A deny list refuses the
   * subject when one of its entries names one of them (fail closed); allow lists ignore them.
   */
  readonly unresolvedAliases?: readonly { readonly version: string; readonly reason: string }[];
  /** Free-form facts another door wants rules to see (e.g. `scan: clean`). */
  readonly attributes?: Readonly<Record<string, string>>;
}

export type RuleOutcome = 'allow' | 'deny' | 'warn';

/** What one rule says about one subject. */
export interface RuleResult {
  readonly outcome: RuleOutcome;
  /** A sentence a developer understands, shown by npm/pip and the CLI. */
  readonly reason: string;
  readonly details?: Readonly<Record<string, unknown>>;
  /** For a temporary denial (minimum age): epoch milliseconds from which it would be allowed. */
  readonly allowAt?: number;
  /** An allow that decides the whole decision (allow-list exemptions). */
  readonly final?: boolean;
}

/** The vulnerability facts of one package, loaded once and asked per version (from core/vulndb). */
export type PackageVulnerabilities = PackageAdvisories;

/** Where vulnerability facts come from (core/vulndb, an online OSV client, or both). */
export interface VulnerabilitySource {
  forPackage(ecosystem: Ecosystem, name: string, signal?: AbortSignal): Promise<PackageVulnerabilities>;
  /** The data's generation (update stamp); a new one means decisions may differ. */
  generation?(): Promise<string>;
}

/** What a rule may consult while evaluating. */
export interface PolicyContext {
  /** Evaluation time in epoch milliseconds (from the injected clock). */
  readonly now: number;
  /** Vulnerability facts for the subject's package, memoized per evaluation batch. */
  vulnerabilities(subject: PolicySubject): Promise<PackageVulnerabilities>;
  readonly signal?: AbortSignal;
}

/** A policy rule: built-in or supplied by a door. */
export interface Rule {
  readonly id: string;
  readonly name: string;
  /** Rules with the same group are OR-ed; ungrouped rules are AND-ed. */
  readonly group?: string;
  /** What a throw from `evaluate` counts as (the failure mode). */
  readonly onError: RuleOutcome;
  appliesTo(subject: PolicySubject): boolean;
  evaluate(subject: PolicySubject, ctx: PolicyContext): RuleResult | Promise<RuleResult>;
  /**
   * The exact versions the rule names for a package (list rules' `a|b` lists), so a door can
   * learn what they point at before deciding (OCI: the digest of a denied tag).
   */
  namedVersions?(ecosystem: Ecosystem, name: string): readonly string[];
}

/** One rule's result inside a decision. */
export interface RuleEvaluation extends RuleResult {
  readonly ruleId: string;
  readonly ruleName: string;
  readonly group?: string;
  /** Set when the rule threw; `outcome` is then its failure mode. */
  readonly error?: string;
}

/** A whole decision: the outcome plus every rule's result, ready for audit and the client. */
export interface PolicyDecision {
  readonly subject: PolicySubject;
  readonly outcome: RuleOutcome;
  readonly allowed: boolean;
  /** The deciding reasons joined (denials first), for headers and messages. */
  readonly reason: string;
  readonly results: readonly RuleEvaluation[];
  readonly policyVersion: string;
  /** Latest `allowAt` of the denials when every denial is temporary. */
  readonly allowAt?: number;
  /** Vulnerability database update time used by this decision (epoch ms), when consulted. */
  readonly databaseUpdatedAt?: number;
  readonly evaluatedAt: number;
}
