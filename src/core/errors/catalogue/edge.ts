import type { ErrorDefinition } from '../definition.ts';

/** Errors of the edge area; codes start with GW_ERR_EDGE_. */
export const EDGE_ERRORS = [
  {
    code: 'GW_ERR_EDGE_CONNECTION_BLOCKED',
    kind: 'PERMISSION_DENIED',
    title: 'Connection blocked',
    description:
      'The firewall, the listener connection limit or the per-address connection rate refused the connection; it was reset without a TLS alert and audited with the reason.',
  },
  {
    code: 'GW_ERR_EDGE_CLIENT_HELLO_INVALID',
    kind: 'INVALID_ARGUMENT',
    title: 'ClientHello not readable',
    description:
      'The connection did not start with a well-formed TLS ClientHello within the deadline and size cap; it was reset.',
  },
  {
    code: 'GW_ERR_EDGE_PROXY_HEADER_INVALID',
    kind: 'INVALID_ARGUMENT',
    title: 'PROXY header refused',
    description:
      'The PROXY protocol header was malformed, incomplete within the deadline, failed its CRC32C, or came from a peer outside `trustedProxies`; the connection was reset.',
  },
  {
    code: 'GW_ERR_EDGE_NO_ROUTE',
    kind: 'NOT_FOUND',
    title: 'No route for server name',
    description: 'No route of the listener matches the SNI host name and the listener has no default route.',
  },
  {
    code: 'GW_ERR_EDGE_BACKEND_UNAVAILABLE',
    kind: 'UNAVAILABLE',
    title: 'Backend unavailable',
    description:
      'The backend could not be reached within the connect timeout or failed before answering; L7 clients get a 502.',
    httpStatus: 502,
  },
  {
    code: 'GW_ERR_EDGE_POLICY_DENIED',
    kind: 'PERMISSION_DENIED',
    title: 'Request refused by route policy',
    description:
      'An L7 policy of the route (blocked User-Agent or missing required header) refused the request with 403.',
  },
  {
    code: 'GW_ERR_EDGE_ROUTE_INVALID',
    kind: 'INVALID_ARGUMENT',
    title: 'Invalid route',
    description:
      'The route document failed validation (a bad host name or backend address, or a field its mode does not use, such as `certFile` on an L4 route); `details.errors` lists each field and what it must be.',
  },
  {
    code: 'GW_ERR_EDGE_ROUTE_EXISTS',
    kind: 'ALREADY_EXISTS',
    title: 'Route exists',
    description:
      'A route with this id, or another route of the same listener for the same host, already exists.',
  },
  {
    code: 'GW_ERR_EDGE_ROUTE_NOT_FOUND',
    kind: 'NOT_FOUND',
    title: 'Route not found',
    description: 'No route with this id exists.',
  },
  {
    code: 'GW_ERR_EDGE_POLICY_INVALID',
    kind: 'INVALID_ARGUMENT',
    title: 'Invalid policy',
    description:
      'The policy document failed validation, or names a route that does not exist or is an L4 (passthrough) route, where the edge never sees HTTP requests; `details.errors` lists each field and what it must be.',
  },
  {
    code: 'GW_ERR_EDGE_POLICY_EXISTS',
    kind: 'ALREADY_EXISTS',
    title: 'Policy exists',
    description: 'A policy with this id already exists.',
  },
  {
    code: 'GW_ERR_EDGE_POLICY_NOT_FOUND',
    kind: 'NOT_FOUND',
    title: 'Policy not found',
    description: 'No policy with this id exists.',
  },
  {
    code: 'GW_ERR_EDGE_LISTENER_NOT_FOUND',
    kind: 'NOT_FOUND',
    title: 'Listener not found',
    description: 'No listener with this id is configured.',
  },
  {
    code: 'GW_ERR_EDGE_LISTENER_LIMIT_INVALID',
    kind: 'INVALID_ARGUMENT',
    title: 'Invalid listener limit',
    description: '`maxConnections` must be an integer from 1 to 1000000.',
  },
] as const satisfies readonly ErrorDefinition[];
