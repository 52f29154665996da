/**
 * Header fields of the frame relay: request validation (RFC 9113 §8.2, §8.3), the header object
 * route policies read, and the field lists sent on: forwarding headers set from the real client
 * address, connection-specific fields dropped (the same rules as ../headers.ts).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { HOP_BY_HOP } from '../headers.ts';
import type { FieldList } from './hpack.ts';

/** §8.2.2: connection-specific fields make an HTTP/2 message malformed. */
const CONNECTION_SPECIFIC = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
]);

/** Header fields whose duplicates node:http2 drops (first wins): the policy view matches it. */
const SINGLE_VALUE = new Set([
  'access-control-allow-credentials',
  'access-control-max-age',
  'access-control-request-method',
  'age',
  'authorization',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-md5',
  'content-range',
  'content-type',
  'date',
  'dnt',
  'etag',
  'expires',
  'from',
  'host',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'range',
  'referer',
  'retry-after',
  'tk',
  'upgrade-insecure-requests',
  'user-agent',
  'x-content-type-options',
]);

/** RFC 9110 §5.6.2 token characters, lower case only (§8.2.1: upper case is malformed). */
const NAME_CHAR = (() => {
  const ok = new Uint8Array(256);
  for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") ok[c.charCodeAt(0)] = 1;
  return ok;
})();

function validName(name: string, from: number): boolean {
  if (name.length <= from) return false;
  for (let i = from; i < name.length; i++) if (NAME_CHAR[name.charCodeAt(i)] !== 1) return false;
  return true;
}

/** §8.2.1: no NUL, CR or LF anywhere, no leading or trailing space or tab. */
function validValue(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0 || c === 10 || c === 13) return false;
  }
  if (value.length === 0) return true;
  const first = value.charCodeAt(0);
  const last = value.charCodeAt(value.length - 1);
  return first !== 32 && first !== 9 && last !== 32 && last !== 9;
}

/** A request's pseudo-headers; `regular` is where the other fields start in the list. */
export interface RequestHead {
  readonly method: string;
  readonly scheme: string | undefined;
  readonly authority: string | undefined;
  readonly path: string | undefined;
  readonly regular: number;
  /** `te: trailers` was sent (gRPC): the client wants trailers. */
  readonly wantsTrailers: boolean;
  /** The `content-length` the DATA must add up to (§8.1.1), when sent. */
  readonly contentLength: number | undefined;
}

/** RFC 9110 §5.6.2 token (methods). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** RFC 3986 §3.1 scheme. */
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*$/;
/**
 * host[:port] of RFC 3986 §3.2.2 (an IP literal in brackets, or a name of unreserved and
 * sub-delims characters), no userinfo, no percent-encoding (a name must match routes as sent).
 */
const AUTHORITY = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=]*)(?::[0-9]{0,5})?$/;
/** Visible ASCII without `#` (and obs-text bytes, as nghttp2 lets through on the other path). */
const PATH = /^[\x21\x22\x24-\x7e\x80-\xff]+$/;

/**
 * Whether an authority (`:authority`, an HTTP/1.1 `Host` or the authority of an absolute-form
 * target) is host[:port] without userinfo or percent-encoding (RFC 9113 §8.3.1, RFC 9112 §3.2):
 * a route check that reads the host of `a:1@b` or `a:x` would see another host than the backend.
 */
export function validAuthority(authority: string): boolean {
  return AUTHORITY.test(authority);
}

/**
 * Whether a request target is an origin-form path of visible ASCII without fragment, or `*` for
 * OPTIONS (RFC 9113 §8.3.1, RFC 9112 §3.2.1 and §3.2.4): anything else could reach the backend
 * as a target it reads as absolute.
 */
export function validOriginTarget(path: string, method: string): boolean {
  if (path === '*') return method === 'OPTIONS';
  return path.charCodeAt(0) === 47 && PATH.test(path);
}

/** Why a request is malformed (a stream error PROTOCOL_ERROR), or its head. */
export function parseRequest(fields: FieldList): RequestHead | string {
  let method: string | undefined;
  let scheme: string | undefined;
  let authority: string | undefined;
  let path: string | undefined;
  let i = 0;
  for (; i < fields.length; i += 2) {
    const name = fields[i] ?? '';
    if (name.charCodeAt(0) !== 58) break;
    const value = fields[i + 1] ?? '';
    if (!validValue(value)) return `bad value of ${name}`;
    if (name === ':method' && method === undefined) method = value;
    else if (name === ':scheme' && scheme === undefined) scheme = value;
    else if (name === ':authority' && authority === undefined) authority = value;
    else if (name === ':path' && path === undefined) path = value;
    else return `unexpected or repeated pseudo-header ${name}`;
  }
  const regular = i;
  let wantsTrailers = false;
  let contentLength: number | undefined;
  for (; i < fields.length; i += 2) {
    const name = fields[i] ?? '';
    const value = fields[i + 1] ?? '';
    if (!validName(name, 0))
      return name.charCodeAt(0) === 58 ? 'pseudo-header after fields' : 'bad field name';
    if (!validValue(value)) return `bad value of ${name}`;
    if (CONNECTION_SPECIFIC.has(name)) return `connection-specific field ${name}`;
    if (name === 'te') {
      // A token, compared without case (RFC 9110 §10.1.4), as nghttp2 does.
      if (value.toLowerCase() !== 'trailers') return 'te other than trailers';
      wantsTrailers = true;
    } else if (name === 'content-length') {
      if (!/^\d{1,15}$/.test(value)) return 'bad content-length';
      const n = Number(value);
      if (contentLength !== undefined && contentLength !== n) return 'conflicting content-length';
      contentLength = n;
    }
  }
  if (method === undefined) return 'no :method';
  if (!TOKEN.test(method)) return 'bad :method';
  if (scheme !== undefined && !SCHEME.test(scheme)) return 'bad :scheme';
  // §8.3.1: no userinfo in :authority; RFC 3986 has no spaces in it.
  if (authority !== undefined && !validAuthority(authority)) return 'bad :authority';
  if (method !== 'CONNECT' && (scheme === undefined || path === undefined || path === '')) {
    return 'no :scheme or :path';
  }
  // Visible ASCII only (RFC 3986 percent-encodes the rest), no fragment, and an origin-form
  // path or `*` for OPTIONS.
  if (path !== undefined && path !== '' && !validOriginTarget(path, method)) return 'bad :path';
  return { method, scheme, authority, path, regular, wantsTrailers, contentLength };
}

/** Trailers carry no pseudo-headers (§8.1). */
export function validTrailers(fields: FieldList): boolean {
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i] ?? '';
    if (!validName(name, 0) || !validValue(fields[i + 1] ?? '')) return false;
  }
  return true;
}

/**
 * Fields a sender must not put in trailers (RFC 9110 §6.5.1: framing, routing, authentication,
 * request modifiers, content format), which backends might still act on, and policies never see
 * in trailers: the relay drops them from a client's trailers.
 */
const NOT_IN_TRAILERS: ReadonlySet<string> = new Set([
  'content-length',
  'content-type',
  'content-encoding',
  'content-range',
  'authorization',
  'proxy-authorization',
  'cookie',
  'expect',
  'range',
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'if-range',
  'max-forwards',
  'cache-control',
  'user-agent',
  'trailer',
]);

/** A client's trailers as sent on to the backend: without connection-specific and forbidden fields. */
export function requestTrailers(fields: FieldList): FieldList {
  const out: FieldList = [];
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i] ?? '';
    if (HOP_BY_HOP.has(name) || NOT_IN_TRAILERS.has(name)) continue;
    out.push(name, fields[i + 1] ?? '');
  }
  return out;
}

/** The header object route policies read, built as node:http2 builds it (duplicates joined). */
export function policyView(fields: FieldList, from: number): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (let i = from; i < fields.length; i += 2) {
    const name = fields[i] ?? '';
    const value = fields[i + 1] ?? '';
    const existing = out[name];
    if (existing === undefined) out[name] = name === 'set-cookie' ? [value] : value;
    else if (Array.isArray(existing)) existing.push(value);
    else if (!SINGLE_VALUE.has(name)) out[name] = `${existing}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  return out;
}

/** The request as sent to an HTTP/2 backend: backend pseudo-headers, filtered fields, forwarding. */
export function backendRequest(
  fields: FieldList,
  head: RequestHead,
  authority: string,
  clientIp: string,
  scheme: 'http' | 'https',
): FieldList {
  const out: FieldList = [
    ':method',
    head.method,
    ':scheme',
    scheme,
    ':authority',
    authority,
    ':path',
    head.path ?? '/',
  ];
  // A `connection` field, and so any field it lists, made the request malformed already.
  let single: Set<string> | undefined;
  for (let i = head.regular; i < fields.length; i += 2) {
    const name = fields[i] ?? '';
    if (HOP_BY_HOP.has(name)) continue;
    if (SINGLE_VALUE.has(name)) {
      // Only the value route policies saw (the first, as node:http2 keeps and forwards it): a
      // second `user-agent` must not reach the backend past a block policy.
      single ??= new Set();
      if (single.has(name)) continue;
      single.add(name);
    }
    out.push(name, fields[i + 1] ?? '');
  }
  // gRPC needs `te: trailers` end to end; it is the only TE value HTTP/2 allows.
  if (head.wantsTrailers) out.push('te', 'trailers');
  out.push(
    'x-forwarded-for',
    clientIp,
    'x-real-ip',
    clientIp,
    'x-forwarded-proto',
    'https',
    'x-forwarded-host',
    authority,
  );
  return out;
}

/** The `:status` of a response header block, or undefined when it is missing or malformed. */
export function responseStatus(fields: FieldList): number | undefined {
  if (fields[0] !== ':status') return undefined;
  const text = fields[1] ?? '';
  if (!/^[1-9][0-9]{2}$/.test(text)) return undefined;
  return Number(text);
}

/**
 * Response (or trailer) fields for the client: pseudo-headers other than `:status` and
 * connection-specific fields dropped; undefined when a field could not be sent on safely.
 */
export function clientResponse(fields: FieldList, status: number | undefined): FieldList | undefined {
  const out: FieldList = status === undefined ? [] : [':status', String(status)];
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i] ?? '';
    if (name.charCodeAt(0) === 58) {
      if (name === ':status' && status !== undefined && i === 0) continue;
      return undefined;
    }
    const value = fields[i + 1] ?? '';
    if (!validName(name, 0) || !validValue(value)) return undefined;
    if (HOP_BY_HOP.has(name)) continue;
    out.push(name, value);
  }
  return out;
}
