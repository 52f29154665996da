import type { Clock } from '#core/app';
import {
  buildRuleTable,
  createPolicyEngine,
  ECOSYSTEMS,
  type Ecosystem,
  type PackageVulnerabilities,
  type PolicyDecision,
  type PolicyEngine,
  type PolicySubject,
  type RuleConfig,
  type VulnerabilitySource,
} from '#core/policy';
import type { ScanOutcome } from './scan/port.ts';
import type { ArtifactStatus, ItemRow } from './store/schema.ts';

/** The gate's verdict on one scanned artifact. */
export interface GateVerdict {
  readonly status: Exclude<ArtifactStatus, 'quarantined'>;
  readonly reason: string;
  readonly policyVersion: string;
  /** Denying decisions, for the audit record and the API. */
  readonly denials: readonly { readonly subject: string; readonly reason: string }[];
}

/**
 * Vulnerability facts taken from a scan's findings, so the policy judges exactly what the
 * scanner (built-in over core/vulndb, or Trivy) found, with the database age it reported.
 */
function findingsSource(outcome: ScanOutcome): VulnerabilitySource {
  return {
    async forPackage(ecosystem, name): Promise<PackageVulnerabilities> {
      const hits = outcome.findings.filter((f) => f.pkg.ecosystem === ecosystem && f.pkg.name === name);
      const available = outcome.databaseUpdatedAt !== undefined || outcome.scanner !== 'gatehouse';
      return {
        available,
        ...(available ? {} : { unavailableReason: 'the vulnerability database is empty' }),
        ...(outcome.databaseUpdatedAt === undefined ? {} : { updatedAt: outcome.databaseUpdatedAt }),
        affecting: (version) => hits.filter((f) => f.pkg.version === version).map((f) => f.advisory),
        fixedBy: () => [],
      };
    },
  };
}

function subjectsOf(item: ItemRow, outcome: ScanOutcome): PolicySubject[] {
  const own: PolicySubject = {
    ecosystem: 'artifact',
    name: item.name,
    version: item.version,
    registry: item.repository,
    digest: `sha256:${item.digest}`,
  };
  const seen = new Set<string>();
  const packages: PolicySubject[] = [];
  for (const p of outcome.packages) {
    if (!(ECOSYSTEMS as readonly string[]).includes(p.ecosystem)) continue;
    const key = `${p.ecosystem}\0${p.name}\0${p.version}`;
    if (seen.has(key)) continue;
    seen.add(key);
    packages.push({
      ecosystem: p.ecosystem as Ecosystem,
      name: p.name,
      version: p.version,
      registry: item.repository,
    });
  }
  return [own, ...packages];
}

/**
 * Compiles the gate's rules once to find configuration mistakes (a duplicate id, a bad range or
 * date) at validate and reload time, before any scan meets them; throws RangeError.
 */
export function checkGateRules(rules: readonly RuleConfig[]): void {
  buildRuleTable({ rules, registries: {} });
}

/** Builds the engine for one scan outcome (the rules are the door's dynamic `policy.rules`). */
export function gateEngine(rules: readonly RuleConfig[], outcome: ScanOutcome, clock: Clock): PolicyEngine {
  return createPolicyEngine({ rules, registries: {} }, { clock, vulnerabilities: findingsSource(outcome) });
}

const describeSubject = (d: PolicyDecision) =>
  d.subject.ecosystem === 'artifact'
    ? 'the artifact'
    : `${d.subject.ecosystem}:${d.subject.name}@${d.subject.version}`;

/**
 * Decides approve or block: archive bombs and path traversal block outright; otherwise every
 * subject (the artifact and each package found in it) goes through core/policy and one denial
 * blocks. Warnings approve but are kept in the reason.
 */
export async function decide(
  item: ItemRow,
  outcome: ScanOutcome,
  rules: readonly RuleConfig[],
  clock: Clock,
): Promise<GateVerdict> {
  const engine = gateEngine(rules, outcome, clock);
  const hard = outcome.problems.filter((p) => p.code !== 'GW_ERR_ARTIFACTS_MANIFEST_INVALID');
  if (hard.length > 0) {
    return {
      status: 'blocked',
      reason: `Archive rejected: ${hard.map((p) => p.message).join('; ')}`,
      policyVersion: engine.version,
      denials: hard.map((p) => ({ subject: p.path, reason: p.message })),
    };
  }
  const decisions = await engine.evaluateMany(subjectsOf(item, outcome));
  const denials = decisions
    .filter((d) => !d.allowed)
    .map((d) => ({ subject: describeSubject(d), reason: d.reason }));
  if (denials.length > 0) {
    return {
      status: 'blocked',
      reason: denials
        .slice(0, 5)
        .map((d) => `${d.subject}: ${d.reason}`)
        .join('; '),
      policyVersion: engine.version,
      denials,
    };
  }
  const warnings = decisions.filter((d) => d.outcome === 'warn').length;
  return {
    status: 'approved',
    reason:
      warnings === 0
        ? `Scanned ${outcome.packages.length} packages, no policy denial`
        : `Scanned ${outcome.packages.length} packages, ${warnings} with warnings`,
    policyVersion: engine.version,
    denials: [],
  };
}
