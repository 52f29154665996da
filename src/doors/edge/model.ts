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
const LABEL = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?';
const HOST = new RegExp(`^(?:\\*|(?:\\*\\.)?${LABEL}(?:\\.${LABEL})*)$`);
const HEADER = /^[a-z0-9!#$%&'*+.^_`|~-]{1,128}$/;

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

/** True for `host:port` with a DNS name or IP (IPv6 in brackets) and a port 1..65535. */
export function isHostPort(text: string): boolean {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]{1,253})):([0-9]{1,5})$/.exec(text);
  if (m === null) return false;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return false;
  return m[1] === undefined || isIP(m[1]) === 6;
}

/** Splits a validated `host:port`. */
export function splitHostPort(text: string): { readonly host: string; readonly port: number } {
  const at = text.lastIndexOf(':');
  return { host: text.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(text.slice(at + 1)) };
}

/** Validates an untrusted route document; returns the route or the list of problems. */
export function parseRoute(input: Input): EdgeRoute | FieldProblem[] {
  const problems: FieldProblem[] = [];
  const id = str(input, 'id', problems, (v) => ID.test(v), 'a name of a-z, 0-9, "_", "." and "-"');
  const listener = str(input, 'listener', problems, (v) => ID.test(v), 'a listener name');
  const host = str(
    input,
    'host',
    problems,
    (v) => HOST.test(v.toLowerCase()),
    'a host name, "*.domain" or "*"',
  );
  const mode = oneOfField(input, 'mode', ROUTE_MODES, 'l4', problems);
  const backend = str(input, 'backend', problems, isHostPort, 'a "host:port" backend address');
  const backendProtocol = oneOfField(input, 'backendProtocol', BACKEND_PROTOCOLS, 'http1', problems);
  const proxy = input['backendProxyProtocol'] ?? false;
  if (typeof proxy !== 'boolean') problems.push({ field: 'backendProxyProtocol', expected: 'true or false' });
  const certFile = optionalStr(input, 'certFile', problems);
  const keyFile = optionalStr(input, 'keyFile', problems);
  const backendCaFile = optionalStr(input, 'backendCaFile', problems);
  if (mode === 'l7' && (certFile === undefined || keyFile === undefined)) {
    problems.push({ field: 'certFile', expected: 'certFile and keyFile for an l7 route' });
  }
  if (problems.length > 0) return problems;
  return {
    id,
    listener,
    host: host.toLowerCase(),
    mode,
    backend,
    backendProtocol,
    backendProxyProtocol: proxy === true,
    ...(certFile === undefined ? {} : { certFile }),
    ...(keyFile === undefined ? {} : { keyFile }),
    ...(backendCaFile === undefined ? {} : { backendCaFile }),
  };
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
  } else if (value === undefined) {
    problems.push({ field: 'value', expected: 'the User-Agent substring to block' });
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
