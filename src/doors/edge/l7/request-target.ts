/**
 * The target of an HTTP/1.1 request (RFC 9112 §3.2) as the edge checks and forwards it: the
 * authority that the 421 check and the backend see, and the origin-form path sent on. The same
 * rules as the frame relay's `:authority` and `:path` (./h2/fields.ts), so a request that an
 * HTTP/2 client cannot send does not get through as HTTP/1.1 either.
 */
import type { IncomingMessage } from 'node:http';
import { validAuthority, validOriginTarget } from './h2/fields.ts';
import { authorityHost } from './policies.ts';

export interface RequestTarget {
  /** The request's authority: that of an absolute-form target, else the `Host` header. */
  readonly authority: string | undefined;
  /** Origin-form path (or `*` for OPTIONS) for the backend. */
  readonly path: string;
}

/** scheme "://" authority, then path, query or nothing (RFC 3986 §3). */
const ABSOLUTE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(.*)$/s;

/**
 * The checked target of a request, or why it is refused (the caller answers 400). An
 * absolute-form target (`GET http://b.example/x`) is reduced to origin-form, and its authority
 * replaces `Host` (RFC 9112 §3.2.2), so the route check reads the name the backend would act on;
 * a `Host` naming another host than that authority is refused, as HAProxy does. An authority
 * with userinfo, a port that is not digits, a second `Host`, or a target in any other form
 * (authority-form is only for CONNECT, which the edge does not serve) is refused too.
 */
export function requestTarget(req: IncomingMessage): RequestTarget | string {
  const method = req.method ?? 'GET';
  const url = req.url ?? '';
  // Every Host field line (`headers.host` keeps only the first).
  const hosts = req.headersDistinct['host'] ?? [];
  if (hosts.length > 1) return 'more than one host field';
  const host = hosts[0];
  if (host !== undefined && !validAuthority(host)) return 'bad host';
  const absolute = ABSOLUTE.exec(url);
  if (absolute === null) {
    if (!validOriginTarget(url, method)) return 'bad request target';
    return { authority: host, path: url };
  }
  const [, scheme = '', authority = '', rest = ''] = absolute;
  const lower = scheme.toLowerCase();
  if (lower !== 'http' && lower !== 'https') return 'bad request target scheme';
  if (authority === '' || !validAuthority(authority)) return 'bad request target authority';
  const path = rest === '' ? '/' : rest.startsWith('?') ? `/${rest}` : rest;
  if (!validOriginTarget(path, method)) return 'bad request target';
  if (host !== undefined && authorityHost(host) !== authorityHost(authority)) {
    return 'host differs from the request target';
  }
  return { authority, path };
}
