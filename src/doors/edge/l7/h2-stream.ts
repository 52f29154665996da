/**
 * The HTTP/2 client path of the L7 proxy on raw streams (no compatibility layer, which costs a
 * third of the throughput): one client stream becomes one backend stream, headers are filtered,
 * bodies piped with flow control, trailers relayed (gRPC status), cancellations passed both ways.
 */
import {
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  request as httpRequest,
} from 'node:http';
import { request as httpsRequest } from 'node:https';
import { constants, type IncomingHttpStatusHeader, type ServerHttp2Stream } from 'node:http2';
import type { EdgeRoute } from '../model.ts';
import type { ConnectionInfo } from '../runtime.ts';
import { backendRequestHeaders, clientResponseHeaders } from './headers.ts';
import type { ProxyContext } from './http-proxy.ts';
import { auditBackendFailure, enforcePolicies } from './policies.ts';

const MINIMAL: Readonly<Record<number, string>> = { 403: 'Forbidden\n', 502: 'Bad gateway\n' };

function answer(ctx: ProxyContext, info: ConnectionInfo, stream: ServerHttp2Stream, status: 403 | 502): void {
  ctx.runtime.metrics.httpResponses.inc({ route: info.routeId, status });
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  const body = MINIMAL[status] ?? '';
  stream.respond({
    ':status': status,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': body.length,
  });
  stream.end(body);
}

/** Proxies one client HTTP/2 stream; HTTP/1.1 backends go through the request path instead. */
export function proxyH2Stream(
  ctx: ProxyContext,
  info: ConnectionInfo,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
): void {
  const compiled = ctx.runtime.table().byId(info.routeId);
  if (compiled === undefined) return answer(ctx, info, stream, 502);
  const path = String(headers[':path'] ?? '/');
  if (
    enforcePolicies(ctx.runtime, info, compiled.policies, headers, { path: path.slice(0, 256) }) !== undefined
  ) {
    return answer(ctx, info, stream, 403);
  }
  const route = compiled.route;
  const authority = String(headers[':authority'] ?? info.serverName ?? '');
  const fail = (reason: string) => {
    auditBackendFailure(ctx.runtime, info, route, reason);
    answer(ctx, info, stream, 502);
  };
  const forward: Forward = {
    ctx,
    info,
    stream,
    fail,
    method: String(headers[':method'] ?? 'GET'),
    path,
    authority,
    headers: backendRequestHeaders(headers, info.client.address, authority),
    wantsTrailers: headers.te === 'trailers',
  };
  if (route.backendProtocol === 'http1' || route.backendProtocol === 'https') return toHttp1(forward, route);
  return toHttp2(forward, route);
}

interface Forward {
  readonly ctx: ProxyContext;
  readonly info: ConnectionInfo;
  readonly stream: ServerHttp2Stream;
  readonly fail: (reason: string) => void;
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  readonly headers: OutgoingHttpHeaders;
  readonly wantsTrailers: boolean;
}

/** Arms the response deadline once the request body is sent; returns the disarm function. */
function responseDeadline(f: Forward, onTimeout: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  // Client-streaming gRPC may take long to send; the deadline covers only the wait for headers.
  const arm = () => {
    timer = setTimeout(onTimeout, f.ctx.responseTimeoutMs);
  };
  if (f.stream.readableEnded) arm();
  else f.stream.once('end', arm);
  return () => {
    f.stream.off('end', arm);
    clearTimeout(timer);
  };
}

function toHttp1(f: Forward, route: EdgeRoute): void {
  const { stream, ctx } = f;
  const request = route.backendProtocol === 'https' ? httpsRequest : httpRequest;
  const upstream = request({
    method: f.method,
    path: f.path,
    headers: { ...f.headers, host: f.authority },
    agent: ctx.pool.agent({
      route,
      info: f.info,
      connectTimeoutMs: ctx.connectTimeoutMs,
      dialTimer: ctx.runtime.metrics.dialSeconds,
    }),
  });
  const disarm = responseDeadline(f, () => upstream.destroy(new Error('response-timeout')));
  upstream.on('response', (incoming: IncomingMessage) => {
    disarm();
    const status = incoming.statusCode ?? 502;
    ctx.runtime.metrics.httpResponses.inc({ route: route.id, status });
    if (stream.destroyed || stream.closed) return;
    stream.respond({ ...clientResponseHeaders(incoming.headers), ':status': status });
    incoming.pipe(stream);
    incoming.on('error', () => stream.close(constants.NGHTTP2_INTERNAL_ERROR));
  });
  upstream.on('error', (error: Error) => {
    disarm();
    if (!stream.headersSent) f.fail(error.message);
    else if (!stream.closed) stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  });
  stream.once('close', () => {
    disarm();
    if (!upstream.writableFinished || !stream.writableFinished) upstream.destroy();
  });
  stream.on('error', () => {});
  stream.pipe(upstream);
}

function toHttp2(f: Forward, route: EdgeRoute): void {
  const { stream, ctx, fail } = f;
  let session;
  try {
    session = ctx.pool.session({
      route,
      info: f.info,
      connectTimeoutMs: ctx.connectTimeoutMs,
      dialTimer: ctx.runtime.metrics.dialSeconds,
    });
  } catch (error) {
    fail(error instanceof Error ? error.message : 'dial');
    return;
  }
  const upstream = session.request({
    ...f.headers,
    ':method': f.method,
    ':path': f.path,
    ':scheme': route.backendProtocol === 'h2' ? 'https' : 'http',
    ':authority': f.authority,
  });
  const disarm = responseDeadline(f, () => {
    upstream.close(constants.NGHTTP2_CANCEL);
    fail('response-timeout');
  });
  let trailers: OutgoingHttpHeaders | undefined;
  upstream.on('response', (h: IncomingHttpHeaders & IncomingHttpStatusHeader, flags: number) => {
    disarm();
    const status = h[':status'] ?? 502;
    ctx.runtime.metrics.httpResponses.inc({ route: route.id, status });
    if (stream.destroyed || stream.closed) return;
    // A trailers-only answer (gRPC errors) stays one HEADERS frame with END_STREAM.
    const endStream = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    // Only clients that announced `te: trailers` (gRPC) get a trailers frame; others end with
    // the last DATA frame, so their next request is not held up.
    stream.respond(
      { ...clientResponseHeaders(h), ':status': status },
      { endStream, waitForTrailers: !endStream && f.wantsTrailers },
    );
    if (!endStream) upstream.pipe(stream);
  });
  upstream.on('trailers', (t: IncomingHttpHeaders) => {
    trailers = clientResponseHeaders(t);
  });
  stream.on('wantTrailers', () => stream.sendTrailers(trailers ?? {}));
  upstream.on('error', (error: Error) => {
    disarm();
    if (!stream.headersSent) fail(error.message);
    else if (!stream.closed) stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  });
  upstream.on('close', () => {
    disarm();
    if (!stream.headersSent && !stream.closed) fail('stream-closed');
    else if (stream.headersSent && !stream.closed && upstream.rstCode !== constants.NGHTTP2_NO_ERROR) {
      stream.close(upstream.rstCode);
    }
  });
  // The client cancelled (gRPC deadline or RST_STREAM): cancel the backend stream too.
  stream.once('close', () => {
    disarm();
    if (!upstream.closed) upstream.close(constants.NGHTTP2_CANCEL);
  });
  stream.on('error', () => {});
  stream.pipe(upstream);
}
