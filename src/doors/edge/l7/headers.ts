/**
 * Header rewriting between client and backend. Connection-specific headers (RFC 9113 §8.2.2,
 * RFC 9110 §7.6.1) never cross the proxy; forwarding headers are set from the real client address
 * and replace what the client sent, because the edge is the first trusted hop.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

const HOP_BY_HOP = new Set([
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
]);

/** Request headers for the backend, without pseudo-headers. */
export function backendRequestHeaders(
  headers: IncomingHttpHeaders,
  clientIp: string,
  authority: string,
): OutgoingHttpHeaders {
  const listed = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s !== ''),
  );
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name.startsWith(':') || HOP_BY_HOP.has(name) || listed.has(name)) continue;
    out[name] = value;
  }
  // gRPC needs `te: trailers` end to end; it is the only TE value HTTP/2 allows.
  if (headers.te === 'trailers') out['te'] = 'trailers';
  out['x-forwarded-for'] = clientIp;
  out['x-real-ip'] = clientIp;
  out['x-forwarded-proto'] = 'https';
  out['x-forwarded-host'] = authority;
  return out;
}

/** Response headers for the client, without pseudo-headers and connection-specific ones. */
export function clientResponseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name.startsWith(':') || HOP_BY_HOP.has(name)) continue;
    out[name] = value;
  }
  return out;
}
