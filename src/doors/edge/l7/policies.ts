/**
 * L7 route policies: block by User-Agent substring, require a header (optionally with a value).
 * Pure functions of the policy list and the request headers.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { EdgePolicy, EdgeRoute } from '../model.ts';
import type { ConnectionInfo, EdgeRuntime } from '../runtime.ts';

/** The first policy a request breaks, or undefined when it passes all of them. */
export function violatedPolicy(
  policies: readonly EdgePolicy[],
  headers: IncomingHttpHeaders,
): EdgePolicy | undefined {
  for (const policy of policies) {
    if (policy.kind === 'block-user-agent') {
      const agent = headers['user-agent'] ?? '';
      if (policy.value !== undefined && agent.toLowerCase().includes(policy.value.toLowerCase()))
        return policy;
    } else if (policy.header !== undefined) {
      const raw = headers[policy.header];
      const values = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
      const ok = policy.value === undefined ? values.length > 0 : values.includes(policy.value);
      if (!ok) return policy;
    }
  }
  return undefined;
}

/**
 * Checks a request against its route's policies; a violation is counted and audited here, and
 * the caller answers 403.
 */
export function enforcePolicies(
  runtime: EdgeRuntime,
  info: ConnectionInfo,
  policies: readonly EdgePolicy[],
  headers: IncomingHttpHeaders,
  details: Readonly<Record<string, unknown>>,
): EdgePolicy | undefined {
  const violated = violatedPolicy(policies, headers);
  if (violated === undefined) return undefined;
  runtime.metrics.policyBlocks.inc({ route: info.routeId, policy: violated.id });
  runtime.audit({
    actor: 'anonymous',
    action: 'edge.request.blocked',
    resource: `route:${info.routeId}`,
    decision: 'deny',
    reason: violated.kind,
    clientIp: info.client.address,
    details: { policy: violated.id, ...details },
  });
  return violated;
}

/** Audits a backend that could not serve a request (the caller answers 502). */
export function auditBackendFailure(
  runtime: EdgeRuntime,
  info: ConnectionInfo,
  route: EdgeRoute,
  reason: string,
): void {
  runtime.backendFailed(route, reason, info.client.address);
}
