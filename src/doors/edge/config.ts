/**
 * The `edge` configuration section. Listeners are static (a restart changes them); their
 * firewall rules are dynamic. Routes and policies here only seed the database on first start;
 * after that the admin API and the CLI own them.
 */
import { createCidrMatcher } from '#core/auth';
import {
  array,
  boolean,
  type ConfigIssue,
  duration,
  type Infer,
  INVALID,
  integer,
  number,
  object,
  oneOf,
  optional,
  type Schema,
  size,
  string,
  withProblems,
} from '#core/config';
import {
  BACKEND_PROTOCOLS,
  type EdgePolicy,
  type EdgeRoute,
  type FieldProblem,
  POLICY_KINDS,
  parsePolicy,
  parseRoute,
  policyRouteProblem,
  ROUTE_MODES,
} from './model.ts';

const NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
const NAME_FORMAT = 'a name of a-z, 0-9, "_", "." and "-"';

/** A problem the per-key schema cannot find, at `field` under the checked value, with the value. */
interface Problem extends FieldProblem {
  readonly value: unknown;
}

const isMap = (v: unknown): v is Readonly<Record<string, unknown>> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A document validator's problems (parseRoute, parsePolicy) with the values they refused. */
function documentProblems(
  validate: (input: Readonly<Record<string, unknown>>) => unknown,
): (raw: unknown) => Problem[] {
  return (raw) => {
    if (!isMap(raw)) return [];
    const out = validate(raw);
    return Array.isArray(out) ? (out as FieldProblem[]).map((p) => ({ ...p, value: raw[p.field] })) : [];
  };
}

/** An address or CIDR block (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.1`) the firewall compiles. */
const cidr = (description: string) =>
  withProblems(string(description, { minLength: 1 }), (raw, parsed) => {
    if (parsed === INVALID) return [];
    try {
      createCidrMatcher([parsed]);
      return [];
    } catch (error) {
      const why = (error as Error).message.replace(/^Invalid CIDR block "[^"]*": /, '');
      return [{ field: '', value: raw, expected: `an IP address or CIDR block (${why})` }];
    }
  });

const listenerSchema = object(
  {
    id: string('Listener name, referenced by routes', {
      pattern: NAME,
      format: 'a name of a-z, 0-9, "_", "." and "-"',
    }),
    host: string('Address to bind', { default: '0.0.0.0', minLength: 1 }),
    port: integer('TCP port to bind (0 picks a free one)', { min: 0, max: 65535 }),
    proxyProtocol: boolean(
      'Expect a PROXY v1/v2 header from every peer; peers outside trustedProxies are reset',
      {
        default: false,
      },
    ),
    trustedProxies: array(cidr('An address or CIDR block'), 'Peers allowed to send a PROXY header', {
      default: [],
    }),
    maxConnections: integer('Concurrent connections; the admin API can override it at run time', {
      default: 10_000,
      min: 1,
    }),
    connectionRate: object(
      {
        rate: number(
          'New connections per second per client (an address, or an IPv6 /64); 0 turns the limit off',
          {
            default: 0,
            min: 0,
          },
        ),
        burst: integer('Bucket size of the per-client connection rate', { default: 50, min: 1 }),
      },
      'Per-client-address connection rate limit',
    ),
    firewall: object(
      {
        allow: array(cidr('An address or CIDR block'), 'When not empty, only these client addresses', {
          default: [],
        }),
        deny: array(cidr('An address or CIDR block'), 'Client addresses always reset', { default: [] }),
      },
      { description: 'Allow/deny rules on the real client address', dynamic: true },
    ),
    preludeTimeout: duration('Deadline for the PROXY header and ClientHello', { default: '5s', min: 1 }),
    connectTimeout: duration('Deadline for connecting to a backend', { default: '5s', min: 1 }),
    idleTimeout: duration('Close a connection with no traffic either way for this long', {
      default: '5m',
      min: 1,
    }),
    responseTimeout: duration('L7: deadline for backend response headers after the request body', {
      default: '60s',
      min: 1,
    }),
    requestHeaderTimeout: duration(
      "L7 HTTP/1.1: deadline for a whole request head, from the first byte of a request (or the start of the connection) to the end of its header section; over it the client gets 408 and the connection closes (like HAProxy's timeout http-request)",
      { default: '10s', min: 1 },
    ),
    streamIdleTimeout: duration(
      'L7: end an HTTP/2 request stream with no HEADERS or DATA either way for this long (408 when no response began)',
      { default: '5m', min: 1 },
    ),
    maxStreamsPerClient: integer(
      'L7: requests in flight to backends per client (an address, or an IPv6 /64) on this listener, over all its connections; beyond it 429. The HTTP/2 relay also keeps each client to a quarter of what its backend pool carries',
      { default: 256, min: 1 },
    ),
    maxHelloBytes: size('Cap on the ClientHello over all its records', {
      default: '64KiB',
      min: 512,
      max: 65_536,
    }),
    minTlsVersion: oneOf(['TLSv1.2', 'TLSv1.3'] as const, 'Lowest TLS version for L7 routes', {
      default: 'TLSv1.3',
    }),
    http2Relay: boolean(
      'L7: relay HTTP/2 clients of h2c and h2 routes frame by frame (ADR 0150); false uses node:http2 streams for them',
      { default: true },
    ),
  },
  'One TLS listener',
);

const routeFields = object(
  {
    id: string('Route name', { pattern: NAME, format: NAME_FORMAT }),
    listener: string('Listener id this route belongs to', { pattern: NAME, format: 'a listener name' }),
    host: string(
      'SNI host name (at most 253 characters, labels of at most 63), "*.domain" (one label) or "*" (listener default)',
      { minLength: 1 },
    ),
    mode: oneOf(ROUTE_MODES, 'l4 passes TLS through; l7 terminates it', { default: 'l4' }),
    backend: string('Backend "host:port"', { minLength: 3 }),
    backendProtocol: optional(
      oneOf(BACKEND_PROTOCOLS, 'L7 backend protocol (http1 when absent); an l4 route refuses it'),
    ),
    backendProxyProtocol: boolean('Send a PROXY v2 header (AUTHORITY = SNI) to the backend', {
      default: false,
    }),
    backendCaFile: optional(string('L7: PEM CA file trusted for a TLS backend')),
    certFile: optional(string('L7: certificate chain PEM file (reloaded on change)')),
    keyFile: optional(string('L7: private key PEM file (reloaded on change)')),
  },
  'One SNI route',
);

/**
 * A route as the seed, the admin API and the CLI give it: the keys above, then the rules across
 * them (host and backend syntax, l4 against l7 fields) from model.ts, so none of them can drift.
 */
export const routeSchema = withProblems(routeFields, documentProblems(parseRoute));

const policyFields = object(
  {
    id: string('Policy name', { pattern: NAME, format: NAME_FORMAT }),
    route: string('Id of an l7 route', { pattern: NAME, format: 'a route id' }),
    kind: oneOf(POLICY_KINDS, 'What the policy checks'),
    header: optional(string('require-header: the header name')),
    value: optional(string('block-user-agent: the substring; require-header: the exact value')),
  },
  'One L7 policy',
);

/** A policy as the seed, the admin API and the CLI give it (keys, then model.ts's rules). */
export const policySchema = withProblems(policyFields, documentProblems(parsePolicy));

/** The body of `PATCH /api/edge/listeners/:id`: the run-time override of a listener's limit. */
export const listenerLimitsSchema = object(
  {
    maxConnections: integer('Concurrent connections of the listener, overriding the configured ones', {
      min: 1,
      max: 1_000_000,
    }),
  },
  'Run-time listener limits',
);

const edgeFields = object(
  {
    enabled: boolean('Run the edge door', { default: false }),
    listeners: array(listenerSchema, 'TLS listeners', { default: [] }),
    routes: array(
      routeSchema,
      {
        description:
          'Routes seeded into the database on first start; later changes here are not applied (a reload logs a warning): routes change through the API',
        dynamic: true,
      },
      {
        default: [],
      },
    ),
    policies: array(
      policySchema,
      {
        description:
          'L7 policies seeded on first start; later changes here are not applied (a reload logs a warning): policies change through the API',
        dynamic: true,
      },
      { default: [] },
    ),
    pollInterval: duration('How often to pick up route changes made by other replicas', {
      default: '2s',
      min: 10,
    }),
  },
  'Edge door: SNI router with L4 passthrough and L7 termination',
);

type Section = Infer<typeof edgeFields>;

/**
 * What the section's entries say against each other: listener ids used twice, PROXY protocol
 * without a trusted peer, seed routes on listeners that do not exist or claiming a host another
 * route of the listener has, ids used twice, policies on routes that are not l7 seed routes.
 * Fields are relative to the section (`listeners[1].id`).
 */
export function edgeSectionProblems(config: Section): Problem[] {
  const problems: Problem[] = [];
  const twice = (kind: string, index: Map<string, number>, id: string, i: number) => {
    const first = index.get(id);
    if (first === undefined) index.set(id, i);
    else {
      problems.push({
        field: `${kind}[${i}].id`,
        value: id,
        expected: `an id no other entry has ("${id}" is also edge.${kind}[${first}].id)`,
      });
    }
  };
  const listeners = new Map<string, number>();
  for (const [i, listener] of config.listeners.entries()) {
    twice('listeners', listeners, listener.id, i);
    if (listener.proxyProtocol && listener.trustedProxies.length === 0) {
      problems.push({
        field: `listeners[${i}].trustedProxies`,
        value: [],
        expected: 'at least one trusted peer when proxyProtocol is true',
      });
    }
  }
  const routes = new Map<string, EdgeRoute>();
  const routeIds = new Map<string, number>();
  const hosts = new Map<string, number>();
  for (const [i, raw] of config.routes.entries()) {
    const route = parseRoute(raw);
    if (Array.isArray(route)) continue; // reported by the route's own schema
    twice('routes', routeIds, route.id, i);
    routes.set(route.id, route);
    if (!listeners.has(route.listener)) {
      const known = [...listeners.keys()].map((id) => `"${id}"`).join(', ') || 'none';
      problems.push({
        field: `routes[${i}].listener`,
        value: route.listener,
        expected: `a configured listener id (edge.listeners has ${known})`,
      });
    }
    // As the route table matches: exact names, "*.parent" and "*" per listener (lower case).
    const key = `${route.listener}\n${route.host}`;
    const claimed = hosts.get(key);
    if (claimed === undefined) hosts.set(key, i);
    else {
      problems.push({
        field: `routes[${i}].host`,
        value: raw.host,
        expected: `a host no other route of listener "${route.listener}" claims (edge.routes[${claimed}] has "${route.host}")`,
      });
    }
  }
  const policyIds = new Map<string, number>();
  for (const [i, raw] of config.policies.entries()) {
    const policy: EdgePolicy | FieldProblem[] = parsePolicy(raw);
    if (Array.isArray(policy)) continue;
    twice('policies', policyIds, policy.id, i);
    const problem = policyRouteProblem(policy, routes.get(policy.route));
    if (problem !== undefined) {
      problems.push({
        field: `policies[${i}].${problem.field}`,
        value: policy.route,
        expected: problem.expected,
      });
    }
  }
  return problems;
}

/** The `edge` section. */
export const edgeConfigSchema = withProblems(edgeFields, (_raw, parsed) =>
  parsed === INVALID ? [] : edgeSectionProblems(parsed),
);

/**
 * Checks an untrusted document (an admin API body) with `schema`, the one the seed is checked
 * with. Problems name the body's keys; a key the schema does not have is named with the known ones.
 */
export function documentIssues(schema: Schema<unknown>, input: unknown, what: string): FieldProblem[] {
  const issues: ConfigIssue[] = [];
  schema.parse(isMap(input) ? input : {}, { path: '', issues, fromText: false });
  const known = Object.keys(schema.fields ?? {});
  return issues.map((issue) => {
    if (known.includes(issue.path) || issue.path === '')
      return { field: issue.path || 'body', expected: issue.expected };
    const near = closest(issue.path, known);
    const hint = near === undefined ? '' : ` (did you mean "${near}"?)`;
    return {
      field: issue.path,
      expected: `absent: it is not a field of ${what}${hint}; the fields are ${known.join(', ')}`,
    };
  });
}

/** The known name within two edits of a mistyped one (case ignored), if any. */
function closest(name: string, known: readonly string[]): string | undefined {
  const a = name.toLowerCase();
  let best: { readonly name: string; readonly distance: number } | undefined;
  for (const candidate of known) {
    const b = candidate.toLowerCase();
    let row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      const next = [i];
      for (let j = 1; j <= b.length; j++) {
        next[j] = Math.min(
          (row[j] ?? 0) + 1,
          (next[j - 1] ?? 0) + 1,
          (row[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
        );
      }
      row = next;
    }
    const distance = row[b.length] ?? Number.POSITIVE_INFINITY;
    if (distance <= 2 && (best === undefined || distance < best.distance))
      best = { name: candidate, distance };
  }
  return best?.name;
}

export type EdgeConfig = Infer<typeof edgeConfigSchema>;
export type EdgeListenerConfig = EdgeConfig['listeners'][number];
