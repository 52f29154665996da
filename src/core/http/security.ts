import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The request id: the caller's `X-Request-Id` when it is short and plain (it ends up in logs
 * and audit records, so anything else is replaced), otherwise a new UUID.
 */
export function requestIdOf(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  return value !== undefined && REQUEST_ID_RE.test(value) ? value : randomUUID();
}

/** `::ffff:10.1.2.3` → `10.1.2.3`, so that IPv4 allow-lists match dual-stack sockets. */
export function normalizeIp(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped?.[1] ?? address;
}

/** API responses are JSON, never documents: a policy that forbids every subresource and framing. */
const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/**
 * Adds the security headers to a response unless the route already chose its own (the web
 * console sets a CSP that allows its scripts).
 */
export function applySecurityHeaders(reply: FastifyReply, tls: boolean): void {
  const set = (name: string, value: string) => {
    if (!reply.hasHeader(name)) reply.header(name, value);
  };
  set('x-content-type-options', 'nosniff');
  set('x-frame-options', 'DENY');
  set('referrer-policy', 'no-referrer');
  set('content-security-policy', API_CSP);
  set('cross-origin-resource-policy', 'same-origin');
  // RFC 6797 section 7.2: HSTS is only meaningful (and only allowed) over a secure transport.
  if (tls) set('strict-transport-security', 'max-age=31536000; includeSubDomains');
}

const CORS_METHODS = 'GET, POST, PUT, PATCH, DELETE';
const CORS_HEADERS = 'Authorization, Content-Type, X-Api-Key, X-Request-Id';

/**
 * CORS (Fetch standard, "CORS protocol"): off unless the origin is on the allow-list. Returns
 * true when the request was a preflight that has been answered.
 */
export function handleCors(
  request: FastifyRequest,
  reply: FastifyReply,
  origins: ReadonlySet<string>,
): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return false;
  reply.header('vary', 'Origin');
  const allowed = origins.has(origin);
  if (allowed) {
    reply.header('access-control-allow-origin', origin);
    reply.header(
      'access-control-expose-headers',
      'RateLimit-Limit, RateLimit-Remaining, Retry-After, X-Request-Id',
    );
  }
  const preflight =
    request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined;
  if (!preflight) return false;
  if (allowed) {
    reply.header('access-control-allow-methods', CORS_METHODS);
    reply.header('access-control-allow-headers', CORS_HEADERS);
    reply.header('access-control-max-age', '600');
  }
  // A refused preflight gets no Allow-* headers, which is how the browser learns the answer.
  void reply.code(204).send();
  return true;
}
