/**
 * Header rewriting between client and backend. Connection-specific headers (RFC 9113 §8.2.2,
 * RFC 9110 §7.6.1) never cross the proxy; forwarding headers are set from the real client address
 * and replace what the client sent, because the edge is the first trusted hop.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** Fields that never cross the proxy (also used by the HTTP/2 frame relay). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'te',
  'host',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-real-ip',
  'forwarded',
  // Other names backends read a client address or port from: only the edge may say those.
  'x-forwarded-port',
  'x-forwarded-server',
  'true-client-ip',
  'x-client-ip',
  'x-cluster-client-ip',
]);

/** The failure reason (audit, log) of a backend answer whose status or headers cannot be relayed. */
export const MALFORMED = 'malformed response headers';

/** The minimal bodies of the answers the edge gives itself, by status, on every L7 path. */
export const MINIMAL_BODIES: Readonly<Record<number, string>> = {
  400: 'Bad request\n',
  403: 'Forbidden\n',
  408: 'Request timeout\n',
  421: 'Misdirected request\n',
  429: 'Too many requests\n',
  431: 'Request header fields too large\n',
  501: 'Not implemented\n',
  502: 'Bad gateway\n',
};

/** `:` starts a pseudo-header (RFC 9113 §8.3), which never crosses the proxy as a field. */
const COLON = 58;

const NOT_LISTED: ReadonlySet<string> = new Set();

/** Header names a `Connection` header lists as connection-specific (RFC 9110 §7.6.1). */
function connectionListed(value: string | undefined): ReadonlySet<string> {
  if (value === undefined) return NOT_LISTED;
  return new Set(
    value
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s !== ''),
  );
}

/** `te: trailers`, the one TE value HTTP/2 allows (a token: any case), which gRPC needs end to end. */
export function wantsTrailers(headers: IncomingHttpHeaders): boolean {
  return String(headers.te ?? '').toLowerCase() === 'trailers';
}

/**
 * Request headers for the backend, without the client's pseudo-headers, added to `out` (the
 * HTTP/2 path passes the backend's pseudo-headers there, so the request needs one object).
 */
export function backendRequestHeaders(
  headers: IncomingHttpHeaders,
  clientIp: string,
  authority: string,
  out: OutgoingHttpHeaders = {},
): OutgoingHttpHeaders {
  const listed = connectionListed(headers.connection);
  // for-in over the parsed header object: no entries array per request on the hot path.
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || name.charCodeAt(0) === COLON || HOP_BY_HOP.has(name) || listed.has(name))
      continue;
    out[name] = value;
  }
  // gRPC needs `te: trailers` end to end; it is the only TE value HTTP/2 allows.
  if (wantsTrailers(headers)) out['te'] = 'trailers';
  out['x-forwarded-for'] = clientIp;
  out['x-real-ip'] = clientIp;
  out['x-forwarded-proto'] = 'https';
  out['x-forwarded-host'] = authority;
  return out;
}

/**
 * Response headers for the client, without pseudo-headers and connection-specific ones, added to
 * `out` (which may already hold `:status`).
 */
export function clientResponseHeaders(
  headers: IncomingHttpHeaders,
  out: OutgoingHttpHeaders = {},
): OutgoingHttpHeaders {
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || name.charCodeAt(0) === COLON || HOP_BY_HOP.has(name)) continue;
    out[name] = value;
  }
  return out;
}
