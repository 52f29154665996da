/**
 * The edge door's data: routes, L7 policies and listener limits, as stored in the database and
 * accepted by the admin API. Validation lives here so the API, the config seed and the store
 * agree on one definition.
 */
import { isIP } from 'node:net';

export const ROUTE_MODES = ['l4', 'l7'] as const;
export type RouteMode = (typeof ROUTE_MODES)[number];

/** How an L7 route talks to its backend: cleartext HTTP/2, HTTP/1.1, or either over TLS. */
export const BACKEND_PROTOCOLS = ['h2c', 'http1', 'h2', 'https'] as const;
export type BackendProtocol = (typeof BACKEND_PROTOCOLS)[number];

/** One SNI route of a listener. */
export interface EdgeRoute {
  /** Unique name, e.g. `api`. */
  readonly id: string;
  readonly listener: string;
  /** `api.example.test`, `*.example.test` (one label) or `*` (the listener's default). */
  readonly host: string;
  readonly mode: RouteMode;
  /** `host:port` of the backend. */
  readonly backend: string;
  /** L7 only. */
  readonly backendProtocol: BackendProtocol;
  /** Write a PROXY v2 header (AUTHORITY = SNI) to the backend. */
  readonly backendProxyProtocol: boolean;
  /** PEM file of CA certificates trusted for a TLS backend; absent means the system store. */
  readonly backendCaFile?: string;
  /** L7 only: the certificate chain and key files served for this route (hot-reloaded). */
  readonly certFile?: string;
  readonly keyFile?: string;
}

/**
 * The backend a route reaches, as its connection pools know it: routes naming the same backend
 * (address, protocol, CA) share its pooled connections, across route swaps too.
 */
export function backendKey(route: EdgeRoute): string {
  // Asked on every proxied request: computed once per route object (routes are immutable).
  let key = BACKEND_KEYS.get(route);
  if (key === undefined) {
    key = `${route.backendProtocol}|${route.backend}|${route.backendCaFile ?? ''}`;
    BACKEND_KEYS.set(route, key);
  }
  return key;
}
const BACKEND_KEYS = new WeakMap<EdgeRoute, string>();

export const POLICY_KINDS = ['block-user-agent', 'require-header'] as const;
export type PolicyKind = (typeof POLICY_KINDS)[number];

/** One L7 policy of a route. */
export interface EdgePolicy {
  readonly id: string;
  readonly route: string;
  readonly kind: PolicyKind;
  /** For `require-header`: the header name (lower-cased). */
  readonly header?: string;
  /** For `block-user-agent`: the substring; for `require-header`: the exact value, if any. */
  readonly value?: string;
}

/** Run-time limits of a listener, overriding the configured ones. */
export interface ListenerLimits {
  readonly listener: string;
  readonly maxConnections: number;
}

const ID = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
/**
 * A DNS label (RFC 1123; underscores are tolerated because real clients send them for internal
 * names), lower case: one definition for route hosts and the ClientHello's server name.
 */
export const HOST_LABEL = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?';
const LABEL = new RegExp(`^${HOST_LABEL}$`);
const HEADER = /^[a-z0-9!#$%&'*+.^_`|~-]{1,128}$/;
/** The longest DNS name (RFC 1035), without the trailing dot; SNI names are capped the same. */
export const MAX_HOST_NAME = 253;
const MAX_LABEL = 63;

/**
 * Why a DNS name (lower-cased, no trailing dot) is not one, as the text of an `expected`; or
 * undefined when it is.
 */
function dnsNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'a host name';
  if (name.length > MAX_HOST_NAME) {
    return `a host name of at most ${MAX_HOST_NAME} characters (got ${name.length})`;
  }
  for (const label of name.split('.')) {
    if (label.length === 0) return 'a host name without empty labels ("..", or a leading dot)';
    if (label.length > MAX_LABEL) {
      return `a host name whose labels have at most ${MAX_LABEL} characters (got one of ${label.length})`;
    }
    if (!LABEL.test(label)) {
      return `a host name whose labels are a-z, 0-9, "_" and "-" (not first or last): "${label.slice(0, 64)}" is not`;
    }
  }
  return undefined;
}

/**
 * Checks a route's SNI host and returns it the way the router compares it (lower-cased, without
 * a trailing dot), or the text of what it must be. `*` is the listener's default route and
 * `*.parent` matches exactly one label under `parent` (route-table.ts); no other wildcard exists.
 */
export function normalizeRouteHost(text: string): { readonly host: string } | { readonly expected: string } {
  const name = text.toLowerCase().replace(/\.$/, '');
  if (name === '*') return { host: name };
  const wildcard = name.startsWith('*.');
  const problem = dnsNameProblem(wildcard ? name.slice(2) : name);
  if (problem !== undefined) {
    const hint = name.includes('*')
      ? '; a wildcard is "*.parent" (one label) or "*" (the default route)'
      : '';
    return { expected: `${problem}${hint}` };
  }
  if (name.length > MAX_HOST_NAME) {
    return { expected: `a host name of at most ${MAX_HOST_NAME} characters (got ${name.length})` };
  }
  return { host: name };
}

/** Why a backend `host:port` is not one, as the text of an `expected`; undefined when it is. */
export function backendAddressProblem(text: string): string | undefined {
  const colon = text.lastIndexOf(':');
  if (colon < 0) return 'a "host:port" backend address (no port in it)';
  const host = text.slice(0, colon);
  const port = text.slice(colon + 1);
  if (!/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
    return `a "host:port" backend address with a port from 1 to 65535 (got "${port.slice(0, 16)}")`;
  }
  const bad = `a "host:port" backend address whose host is a DNS name, an IPv4 address or an IPv6 address in brackets (got "${host.slice(0, 64)}")`;
  if (host.startsWith('['))
    return /^\[[0-9a-fA-F:.]+\]$/.test(host) && isIP(host.slice(1, -1)) === 6 ? undefined : bad;
  if (host.includes(':')) return `${bad}: an IPv6 address goes in brackets, e.g. "[2001:db8::1]:443"`;
  const name = host.toLowerCase().replace(/\.$/, '');
  // A name whose last label is numeric is an IPv4 address or nothing (RFC 1123 2.1, RFC 3696 2).
  if (/(?:^|\.)[0-9]+$/.test(name)) return isIP(name) === 4 ? undefined : bad;
  const problem = dnsNameProblem(name);
  return problem === undefined ? undefined : `${bad}: ${problem}`;
}

/** A field-level problem, reported as `details.errors` by the API. */
export interface FieldProblem {
  readonly field: string;
  readonly expected: string;
}

type Input = Readonly<Record<string, unknown>>;

function str(
  input: Input,
  key: string,
  problems: FieldProblem[],
  test: (v: string) => boolean,
  expected: string,
) {
  const v = input[key];
  if (typeof v === 'string' && test(v)) return v;
  problems.push({ field: key, expected });
  return '';
}

function optionalStr(input: Input, key: string, problems: FieldProblem[]): string | undefined {
  const v = input[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string' && v.length > 0 && v.length <= 4096) return v;
  problems.push({ field: key, expected: 'a non-empty string' });
  return undefined;
}

function oneOfField<T extends string>(
  input: Input,
  key: string,
  values: readonly T[],
  fallback: T,
  problems: FieldProblem[],
): T {
  const v = input[key] ?? fallback;
  if (typeof v === 'string' && (values as readonly string[]).includes(v)) return v as T;
  problems.push({ field: key, expected: `one of ${values.join(', ')}` });
  return fallback;
}

/** Splits a validated `host:port`. */
export function splitHostPort(text: string): { readonly host: string; readonly port: number } {
  const at = text.lastIndexOf(':');
  return { host: text.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(text.slice(at + 1)) };
}

/** A string field checked by `problem`, which returns what the value must be, or undefined. */
function checkedStr(
  input: Input,
  key: string,
  problems: FieldProblem[],
  problem: (v: string) => string | undefined,
  expected: string,
): string {
  const v = input[key];
  if (typeof v !== 'string') {
    problems.push({ field: key, expected });
    return '';
  }
  const found = problem(v);
  if (found === undefined) return v;
  problems.push({ field: key, expected: found });
  return '';
}

/** Fields an L4 (passthrough) route refuses: the edge never terminates its TLS or speaks HTTP. */
const L7_ONLY_ROUTE_FIELDS = ['backendProtocol', 'certFile', 'keyFile', 'backendCaFile'] as const;

/** What an l7 route without its certificate or key is told. */
const L7_FILES =
  'a PEM file path: an l7 route terminates TLS, so it needs both certFile (the certificate chain) and keyFile (its private key)';

/** Validates an untrusted route document; returns the route or the list of problems. */
export function parseRoute(input: Input): EdgeRoute | FieldProblem[] {
  const problems: FieldProblem[] = [];
  const id = str(input, 'id', problems, (v) => ID.test(v), 'a name of a-z, 0-9, "_", "." and "-"');
  const listener = str(input, 'listener', problems, (v) => ID.test(v), 'a listener name');
  let host = '';
  checkedStr(
    input,
    'host',
    problems,
    (v) => {
      const checked = normalizeRouteHost(v);
      if ('expected' in checked) return checked.expected;
      host = checked.host;
      return undefined;
    },
    'a host name, "*.domain" or "*"',
  );
  const mode = oneOfField(input, 'mode', ROUTE_MODES, 'l4', problems);
  const backend = checkedStr(
    input,
    'backend',
    problems,
    backendAddressProblem,
    'a "host:port" backend address',
  );
  const backendProtocol = oneOfField(input, 'backendProtocol', BACKEND_PROTOCOLS, 'http1', problems);
  const proxy = input['backendProxyProtocol'] ?? false;
  if (typeof proxy !== 'boolean') problems.push({ field: 'backendProxyProtocol', expected: 'true or false' });
  const certFile = optionalStr(input, 'certFile', problems);
  const keyFile = optionalStr(input, 'keyFile', problems);
  const backendCaFile = optionalStr(input, 'backendCaFile', problems);
  if (mode === 'l7') {
    // Named one by one, so a route missing both hears of both.
    for (const [field, file] of [
      ['certFile', certFile],
      ['keyFile', keyFile],
    ] as const) {
      if (file === undefined && !problems.some((p) => p.field === field)) {
        problems.push({ field, expected: L7_FILES });
      }
    }
  }
  if (mode === 'l4') {
    for (const field of L7_ONLY_ROUTE_FIELDS) {
      if (input[field] !== undefined && input[field] !== null) {
        problems.push({
          field,
          expected:
            'absent on an l4 route: it passes TLS through to its backend, so this field applies only to l7 routes',
        });
      }
    }
  }
  if (problems.length > 0) return problems;
  return {
    id,
    listener,
    host,
    mode,
    backend,
    backendProtocol,
    backendProxyProtocol: proxy === true,
    ...(certFile === undefined ? {} : { certFile }),
    ...(keyFile === undefined ? {} : { keyFile }),
    ...(backendCaFile === undefined ? {} : { backendCaFile }),
  };
}

/**
 * What is wrong with the route a policy names, or undefined when it is an L7 route. Policies act
 * on HTTP requests, which only an L7 route (TLS terminated by the edge) has; an L4 route passes
 * TLS through and would never apply one.
 */
export function policyRouteProblem(
  policy: Pick<EdgePolicy, 'route'>,
  route: EdgeRoute | undefined,
): FieldProblem | undefined {
  if (route === undefined) return { field: 'route', expected: 'the id of an existing route' };
  if (route.mode !== 'l7') {
    return {
      field: 'route',
      expected: `the id of an l7 route: policies act on HTTP requests, and route "${policy.route}" is l4 (TLS passthrough), where the edge never sees them`,
    };
  }
  return undefined;
}

/** Validates an untrusted policy document. */
export function parsePolicy(input: Input): EdgePolicy | FieldProblem[] {
  const problems: FieldProblem[] = [];
  const id = str(input, 'id', problems, (v) => ID.test(v), 'a name of a-z, 0-9, "_", "." and "-"');
  const route = str(input, 'route', problems, (v) => ID.test(v), 'a route id');
  const kind = oneOfField(input, 'kind', POLICY_KINDS, 'block-user-agent', problems);
  const value = optionalStr(input, 'value', problems);
  let header: string | undefined;
  if (kind === 'require-header') {
    header = str(
      input,
      'header',
      problems,
      (v) => HEADER.test(v.toLowerCase()),
      'an HTTP header name',
    ).toLowerCase();
  } else {
    if (value === undefined) problems.push({ field: 'value', expected: 'the User-Agent substring to block' });
    if (input['header'] !== undefined && input['header'] !== null) {
      problems.push({
        field: 'header',
        expected:
          'absent on a block-user-agent policy: it always reads User-Agent (header applies to require-header)',
      });
    }
  }
  if (problems.length > 0) return problems;
  return {
    id,
    route,
    kind,
    ...(header === undefined ? {} : { header }),
    ...(value === undefined ? {} : { value }),
  };
}
