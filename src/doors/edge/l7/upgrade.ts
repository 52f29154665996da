/**
 * HTTP/1.1 Upgrade (WebSocket, RFC 6455 §4) through an L7 route: the request line and rewritten
 * headers go to the backend over a fresh connection, then bytes are relayed both ways untouched.
 */
import { type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ConnectionInfo, EdgeRuntime } from '../runtime.ts';
import { dialBackend } from './backends.ts';
import { backendRequestHeaders, MINIMAL_BODIES } from './headers.ts';
import { enforcePolicies, misdirected } from './policies.ts';

/** A whole HTTP/1.1 answer with the minimal body, for a socket taken over from the server. */
function rawAnswer(status: 403 | 421 | 502): string {
  const body = MINIMAL_BODIES[status] ?? '';
  return `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`;
}

/** Relays one upgrade request; answers 403/421/502 itself when it cannot. */
export function proxyUpgrade(
  runtime: EdgeRuntime,
  info: ConnectionInfo,
  connectTimeoutMs: number,
  req: IncomingMessage,
  client: Duplex,
  head: Buffer,
): void {
  client.on('error', () => client.destroy());
  const compiled = runtime.table().byId(info.routeId);
  if (compiled === undefined) {
    client.end(rawAnswer(502));
    return;
  }
  if (misdirected(runtime, info, req.headers.host ?? '', { upgrade: true })) {
    client.end(rawAnswer(421));
    return;
  }
  if (enforcePolicies(runtime, info, compiled.policies, req.headers, { upgrade: true }) !== undefined) {
    client.end(rawAnswer(403));
    return;
  }
  const authority = req.headers.host ?? info.serverName ?? '';
  const headers = backendRequestHeaders(req.headers, info.client.address, authority);
  const lines = [
    `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1`,
    `host: ${authority}`,
    'connection: Upgrade',
  ];
  lines.push(`upgrade: ${req.headers.upgrade ?? ''}`);
  for (const [name, value] of Object.entries(headers)) {
    for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${String(v)}`);
  }
  const upstream = dialBackend(
    { route: compiled.route, info, connectTimeoutMs, dialTimer: runtime.metrics.dialSeconds },
    ['http/1.1'],
  );
  let connected = false;
  upstream.once('error', () => {
    if (!connected) client.end(rawAnswer(502));
    else client.destroy();
  });
  upstream.once('data', () => {
    connected = true;
  });
  upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
  if (head.length > 0) upstream.write(head);
  upstream.pipe(client);
  client.pipe(upstream);
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
}
