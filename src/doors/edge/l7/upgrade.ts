/**
 * HTTP/1.1 Upgrade (WebSocket, RFC 6455 §4) through an L7 route: the request line and rewritten
 * headers go to the backend over a fresh connection, and only once the backend answers
 * `101 Switching Protocols` are bytes relayed both ways untouched. Any other answer is passed to
 * the client as a normal response and the connection closed: the bytes a client sends after the
 * request head are not HTTP the edge has checked, so they never reach a backend that did not
 * switch protocols (the request smuggling that a proxy tunnelling at once allows).
 */
import { type IncomingMessage, request as httpRequest, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ConnectionInfo, EdgeRuntime } from '../runtime.ts';
import { connectionFactory } from './backends.ts';
import { backendRequestHeaders, HOP_BY_HOP, MINIMAL_BODIES } from './headers.ts';
import { auditBackendFailure, enforcePolicies, misdirected } from './policies.ts';
import { requestTarget } from './request-target.ts';

export interface UpgradeOptions {
  readonly connectTimeoutMs: number;
  /** The backend's answer to the upgrade request must come within this (`responseTimeout`). */
  readonly responseTimeoutMs: number;
  /** A tunnel with no bytes either way for this long is closed (`idleTimeout`). */
  readonly idleTimeoutMs: number;
}

/**
 * How long a connection the edge answered and ended stays open for the client to read the answer
 * and close: closing with unread client bytes would send a TCP reset, which can discard the answer.
 */
const LINGER_MS = 2000;

/** Answers on a socket taken over from the server, then closes it (reading and dropping the rest). */
function endWith(client: Duplex, answer: string): void {
  client.resume();
  client.end(answer);
  (client as Partial<Pick<Socket, 'setTimeout'>>).setTimeout?.(LINGER_MS, () => client.destroy());
}

/** A whole HTTP/1.1 answer with the minimal body, for a socket taken over from the server. */
function rawAnswer(status: 400 | 403 | 421 | 502): string {
  const body = MINIMAL_BODIES[status] ?? '';
  return `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`;
}

/** A response head from a parsed backend response; `keep` says which raw fields go on. */
function responseHead(res: IncomingMessage, keep: (name: string) => boolean, extra = ''): string {
  const lines = [`HTTP/1.1 ${res.statusCode ?? 502} ${res.statusMessage ?? ''}`];
  const raw = res.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? '';
    if (keep(name.toLowerCase())) lines.push(`${name}: ${raw[i + 1] ?? ''}`);
  }
  return `${lines.join('\r\n')}\r\n${extra}\r\n`;
}

/**
 * Why an upgrade request is refused (400), or undefined. `h2c` (RFC 7540 §3.2) is gone from
 * RFC 9113, and an h2c upgrade through a TLS terminator lets a client speak HTTP/2 straight to
 * the backend past every check of the edge. A request with a body would leave the backend
 * waiting for bytes the edge only sends after a 101.
 */
function refusedUpgrade(req: IncomingMessage): string | undefined {
  const protocols = (req.headers.upgrade ?? '').split(',');
  if (protocols.some((p) => (p.trim().split('/')[0] ?? '').toLowerCase() === 'h2c')) return 'h2c';
  const length = req.headers['content-length'];
  if (req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) {
    return 'upgrade with a body';
  }
  return undefined;
}

/** Relays one upgrade request; answers 400/403/421/502 itself when it cannot. */
export function proxyUpgrade(
  runtime: EdgeRuntime,
  info: ConnectionInfo,
  options: UpgradeOptions,
  req: IncomingMessage,
  client: Duplex,
  head: Buffer,
): void {
  client.on('error', () => client.destroy());
  const compiled = runtime.table().terminating(info);
  if (compiled === undefined) return endWith(client, rawAnswer(502));
  const checked = requestTarget(req);
  const refused = typeof checked === 'string' ? checked : refusedUpgrade(req);
  if (typeof checked === 'string' || refused !== undefined) {
    runtime.log.debug('HTTP/1.1 upgrade refused', { route: info.routeId, reason: refused });
    return endWith(client, rawAnswer(400));
  }
  if (misdirected(runtime, info, checked.authority ?? '', { upgrade: true })) {
    return endWith(client, rawAnswer(421));
  }
  if (enforcePolicies(runtime, info, compiled.policies, req.headers, { upgrade: true }) !== undefined) {
    return endWith(client, rawAnswer(403));
  }
  const route = compiled.route;
  const authority = checked.authority ?? info.serverName ?? '';
  const headers = backendRequestHeaders(req.headers, info.client.address, authority, {
    host: authority,
    connection: 'Upgrade',
    upgrade: req.headers.upgrade ?? '',
  });
  const target = {
    route,
    info,
    connectTimeoutMs: options.connectTimeoutMs,
    dialTimer: runtime.metrics.dialSeconds,
  };
  const upstream = httpRequest({
    method: req.method ?? 'GET',
    path: checked.path,
    headers,
    setHost: false,
    // One connection per upgrade, dialled like every other backend connection (PROXY header, TLS).
    createConnection: connectionFactory(target, ['http/1.1']),
  });
  let answered = false;
  const timer = setTimeout(() => fail('response-timeout'), options.responseTimeoutMs);
  timer.unref();
  const settle = (): boolean => {
    if (answered) return false;
    answered = true;
    clearTimeout(timer);
    return true;
  };
  function fail(reason: string): void {
    if (!settle()) return;
    upstream.destroy();
    auditBackendFailure(runtime, info, route, reason);
    endWith(client, rawAnswer(502));
  }
  client.once('close', () => {
    clearTimeout(timer);
    upstream.destroy();
  });
  upstream.on('error', (error: Error) => {
    if (answered) client.destroy();
    else fail(error.message);
  });
  // 1xx answers other than 101 (RFC 9110 §15.2: a proxy forwards them).
  upstream.on('information', (info1xx: IncomingMessage) => {
    if (!answered) client.write(responseHead(info1xx, (name) => !HOP_BY_HOP.has(name)));
  });
  upstream.on('upgrade', (res: IncomingMessage, backend: Duplex, early: Buffer) => {
    if (res.statusCode !== 101 || !settle()) {
      backend.destroy();
      fail('upgrade-not-switched');
      return;
    }
    backend.on('error', () => client.destroy());
    client.write(responseHead(res, () => true));
    if (early.length > 0) client.write(early);
    // Only now: what the client sent after its request head belongs to the new protocol.
    if (head.length > 0) backend.write(head);
    backend.pipe(client);
    client.pipe(backend);
    // The HTTP server stops watching an upgraded socket: the tunnel keeps the listener's idle
    // timeout itself (every byte either way crosses the client socket, so one timer covers both).
    (client as Partial<Pick<Socket, 'setTimeout'>>).setTimeout?.(options.idleTimeoutMs, () =>
      client.destroy(),
    );
    client.on('close', () => backend.destroy());
    backend.on('close', () => client.destroy());
  });
  upstream.on('response', (res: IncomingMessage) => {
    // A 101 without the upgrade fields is no protocol switch the edge can relay.
    if (res.statusCode === 101) {
      fail('upgrade-not-switched');
      return;
    }
    if (!settle()) return;
    // Passed on as a normal response; the body is decoded, so it ends with the connection unless
    // the backend gave its length.
    const chunked = res.headers['transfer-encoding'] !== undefined;
    const keep = (name: string) => !HOP_BY_HOP.has(name) && !(chunked && name === 'content-length');
    client.write(responseHead(res, keep, 'connection: close\r\n'));
    res.pipe(client, { end: false });
    res.once('end', () => {
      upstream.destroy();
      endWith(client, '');
    });
    // A body cut off by the backend must not look complete: reset instead of a clean end.
    res.once('aborted', () => client.destroy());
    res.once('error', () => client.destroy());
  });
  upstream.end();
}
