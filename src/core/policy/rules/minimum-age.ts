import { formatDuration } from '#core/config';
import { compilePattern } from '../patterns.ts';
import type { PolicyContext, PolicySubject, RuleResult } from '../types.ts';

export interface MinimumAgeOptions {
  readonly ageMs: number;
  readonly exclude: readonly string[];
  readonly missingTimestamp: 'allow' | 'deny';
  readonly allowVulnerabilityFixes: boolean;
}

const label = (s: PolicySubject) => `"${s.name}@${s.version}"`;

/**
 * Minimum age: a fresh version is where a hijacked maintainer account shows up first, so new
 * versions wait until the community (and scanners) had time to look at them.
 */
export function minimumAgeEvaluator(options: MinimumAgeOptions) {
  const excluded = options.exclude.map((p) => ({ pattern: p, test: compilePattern(p) }));
  return async (subject: PolicySubject, ctx: PolicyContext): Promise<RuleResult> => {
    const exclusion = excluded.find((e) => e.test(subject.name, subject.ecosystem));
    if (exclusion !== undefined) {
      return {
        outcome: 'allow',
        reason: `${label(subject)} is excluded from the age rule by "${exclusion.pattern}"`,
      };
    }
    if (subject.publishedAt === undefined) {
      return {
        outcome: options.missingTimestamp,
        reason: `${label(subject)} has no publication time; the policy ${options.missingTimestamp === 'allow' ? 'allows' : 'refuses'} such versions`,
      };
    }
    const age = ctx.now - subject.publishedAt;
    if (age >= options.ageMs) {
      return { outcome: 'allow', reason: `${label(subject)} is older than ${formatDuration(options.ageMs)}` };
    }
    const allowAt = subject.publishedAt + options.ageMs;
    if (options.allowVulnerabilityFixes) {
      const vulns = await ctx.vulnerabilities(subject);
      const fixes = vulns.available ? vulns.fixedBy(subject.version) : [];
      if (fixes.length > 0) {
        const ids = fixes.map((a) => a.id).join(', ');
        return {
          outcome: 'allow',
          reason: `${label(subject)} is newer than ${formatDuration(options.ageMs)} but fixes ${ids}`,
          details: { fixes: fixes.map((a) => a.id) },
        };
      }
    }
    return {
      outcome: 'deny',
      reason: `${label(subject)} was published ${formatDuration(Math.max(0, Math.floor(age / 1000) * 1000))} ago; the minimum age is ${formatDuration(options.ageMs)}; allowed from ${new Date(allowAt).toISOString()}`,
      allowAt,
      details: { publishedAt: new Date(subject.publishedAt).toISOString(), minimumAgeMs: options.ageMs },
    };
  };
}
