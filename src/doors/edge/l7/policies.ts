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

/**
 * The host of an `:authority` or `Host` value: lower case, without port or trailing dot. Both L7
 * paths refuse userinfo before this; should one slip through, the host is what follows the last
 * `@`, as a URI parser (and so a backend) reads it, not the userinfo before it.
 */
export function authorityHost(authority: string): string {
  const full = authority.trim().toLowerCase();
  const value = full.slice(full.lastIndexOf('@') + 1);
  if (value.startsWith('[')) {
    const end = value.indexOf(']');
    return end < 0 ? value : value.slice(1, end);
  }
  const colon = value.indexOf(':');
  // One colon: host and port. More than one: an IPv6 literal without brackets, kept whole.
  const host = colon >= 0 && value.indexOf(':', colon + 1) < 0 ? value.slice(0, colon) : value;
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

/**
 * Whether a request names a host that another route of the listener serves: a client that
 * reuses a connection for another name its certificate covers (HTTP/2 connection coalescing,
 * or a Host header that differs from the SNI) would otherwise reach the connection's backend
 * under the connection's policies. Such a request is counted and audited here, and the caller
 * answers 421 Misdirected Request (RFC 9110 §15.5.20), after which the client opens a connection
 * with the right server name. A host no route names (only the listener default would take it)
 * is not misdirected: it goes where the server name sent the connection.
 */
export function misdirected(
  runtime: EdgeRuntime,
  info: ConnectionInfo,
  authority: string,
  details: Readonly<Record<string, unknown>>,
): boolean {
  const host = authorityHost(authority);
  if (host === '') return false;
  const match = runtime.table().match(info.listener, host);
  if (match === undefined || match.kind === 'default' || match.compiled.route.id === info.routeId)
    return false;
  runtime.audit({
    actor: 'anonymous',
    action: 'edge.request.misdirected',
    resource: `route:${info.routeId}`,
    decision: 'deny',
    reason: 'authority-names-another-route',
    clientIp: info.client.address,
    details: { host: host.slice(0, 256), route: match.compiled.route.id, ...details },
  });
  return true;
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
