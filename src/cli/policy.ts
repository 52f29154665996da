import type { PolicyDecision } from '#core/policy';
import type { PolicyTestAnswer } from '../doors/registry/index.ts';
import { type CommandContext, type CommandSpec, EXIT, usageError } from './framework.ts';

const ECOSYSTEMS = ['npm', 'pypi', 'go', 'maven', 'oci', 'artifact'];

/**
 * Splits `lodash@4.17.20`, `@scope/pkg@1.0.0` or `requests==2.31.0` into name and version; an
 * OCI image also as `repo:tag` (the tag after the last `/`), as `docker pull` names it.
 */
export function parsePackageSpec(spec: string, ecosystem = ''): { name: string; version: string } {
  const pep = /^([^=<>!~\s]+)==([^=\s]+)$/.exec(spec);
  if (pep !== null) return { name: pep[1] as string, version: pep[2] as string };
  const at = spec.lastIndexOf('@');
  const colon = spec.lastIndexOf(':');
  if (ecosystem === 'oci' && at < 0 && colon > spec.lastIndexOf('/') && colon > 0 && colon < spec.length - 1)
    return { name: spec.slice(0, colon), version: spec.slice(colon + 1) };
  if (at <= 0 || at === spec.length - 1) {
    const oci = ecosystem === 'oci' ? ', REPOSITORY:TAG' : '';
    throw usageError(`Expected NAME@VERSION (or NAME==VERSION${oci}), got "${spec}"`);
  }
  return { name: spec.slice(0, at), version: spec.slice(at + 1) };
}

function printDecision(ctx: CommandContext, d: PolicyDecision, found: boolean): void {
  const { out } = ctx;
  const label = `${d.subject.ecosystem}:${d.subject.name}@${d.subject.version}`;
  const verdict =
    d.outcome === 'deny'
      ? out.red('DENIED')
      : d.outcome === 'warn'
        ? out.yellow('ALLOWED (with warnings)')
        : out.green('ALLOWED');
  out.line(`${out.bold(label)}: ${verdict}`);
  if (!found) out.line(out.dim('  (version not found upstream; evaluated without a publication time)'));
  out.table(
    d.results.map((r) => ({ rule: r.ruleId, outcome: r.outcome, reason: r.reason })),
    [
      { header: 'RULE', value: (r) => r.rule },
      { header: 'OUTCOME', value: (r) => r.outcome },
      { header: 'REASON', value: (r) => r.reason },
    ],
  );
  if (d.allowAt !== undefined) out.line(`Allowed from ${new Date(d.allowAt).toISOString()}`);
  out.line(out.dim(`policy ${d.policyVersion}`));
}

/** `gatehouse policy …`: evaluate the registry policy on the server. */
export const policyCommands: readonly CommandSpec[] = [
  {
    name: 'policy test',
    summary: 'Evaluate the policy for one package version; exit 0 when allowed, 10 when denied',
    usage: 'ECOSYSTEM NAME@VERSION',
    args: { min: 2, max: 2 },
    flags: [
      {
        name: 'registry',
        type: 'string',
        value: 'NAME',
        description: 'Evaluate with this registry’s overrides',
      },
    ],
    async run(ctx) {
      const [ecosystem, spec] = ctx.args as [string, string];
      if (!ECOSYSTEMS.includes(ecosystem))
        throw usageError(`Unknown ecosystem "${ecosystem}"; use one of ${ECOSYSTEMS.join(', ')}`);
      const { name, version } = parsePackageSpec(spec, ecosystem);
      const registry = ctx.flag('registry');
      const client = await ctx.client();
      const answer = await client.request<PolicyTestAnswer>('POST', '/api/registry/policy/test', {
        body: { ecosystem, name, version, ...(registry === undefined ? {} : { registry }) },
      });
      ctx.out.result(answer, () => printDecision(ctx, answer.decision, answer.found));
      return answer.decision.allowed ? EXIT.ok : EXIT.denied;
    },
  },
];
