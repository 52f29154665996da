/**
 * The HTTP/2 client path of the L7 proxy on raw streams (no compatibility layer, which costs a
 * third of the throughput): one client stream becomes one backend stream, headers are filtered,
 * bodies relayed with flow control, trailers relayed (gRPC status), cancellations passed both ways.
 */
import {
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  request as httpRequest,
} from 'node:http';
import { request as httpsRequest } from 'node:https';
import {
  type ClientHttp2Stream,
  constants,
  type IncomingHttpStatusHeader,
  type ServerHttp2Stream,
} from 'node:http2';
import type { EdgeRoute } from '../model.ts';
import type { ConnectionInfo } from '../runtime.ts';
import { clientKey } from './client-streams.ts';
import {
  backendRequestHeaders,
  clientResponseHeaders,
  MALFORMED,
  MINIMAL_BODIES,
  wantsTrailers,
} from './headers.ts';
import { responseDeadline } from './deadlines.ts';
import { type ProxyContext, resetStream } from './http-proxy.ts';
import { auditBackendFailure, enforcePolicies, misdirected } from './policies.ts';

function answer(
  ctx: ProxyContext,
  info: ConnectionInfo,
  stream: ServerHttp2Stream,
  status: 403 | 408 | 421 | 429 | 501 | 502,
): void {
  ctx.runtime.metrics.httpResponses.inc({ route: info.routeId, status });
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    resetStream(stream, constants.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  const body = MINIMAL_BODIES[status] ?? '';
  stream.respond({
    ':status': status,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': body.length,
  });
  stream.end(body);
}

const ignore = (): void => {};

/**
 * True for the statuses a server stream can send as its response: Node's `respond` throws on a
 * 1xx (informational answers are not passed on, as on the relay) and on anything above 599, which
 * RFC 9110 §15 leaves undefined but HTTP/1.1 and HTTP/2 backends may send. Any other status is
 * answered 502, since an exception in a backend event handler would end the process.
 */
function sendable(status: number): boolean {
  return Number.isInteger(status) && status >= 200 && status <= 599;
}

function pseudoHeader(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return typeof value === 'string' ? value : undefined;
}

/**
 * Proxies one client HTTP/2 stream; HTTP/1.1 backends go through the request path instead.
 * `ended` is true when the request came as one HEADERS frame with END_STREAM (no body).
 */
export function proxyH2Stream(
  ctx: ProxyContext,
  info: ConnectionInfo,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  ended: boolean,
): void {
  const compiled = ctx.runtime.table().terminating(info);
  if (compiled === undefined) {
    // The route is gone: the session ends gracefully (GOAWAY), so the client reconnects.
    answer(ctx, info, stream, 502);
    stream.session?.close();
    return;
  }
  // CONNECT (RFC 9113 §8.5, and extended CONNECT, RFC 8441) is not proxied, as on the relay: it
  // would go to the backend as a request without a path and its stream would never end.
  if (pseudoHeader(headers, ':method') === 'CONNECT') {
    answer(ctx, info, stream, 501);
    // §8.1: a complete response; the client's side of a CONNECT stream never ends by itself.
    if (!stream.destroyed && !stream.closed) stream.close(constants.NGHTTP2_NO_ERROR);
    return;
  }
  // Pseudo-headers are single strings (RFC 9113 §8.3); the header type is the generic one.
  const path = pseudoHeader(headers, ':path') ?? '/';
  const requested = pseudoHeader(headers, ':authority') ?? headers.host ?? '';
  if (misdirected(ctx.runtime, info, requested, { path: path.slice(0, 256) })) {
    return answer(ctx, info, stream, 421);
  }
  if (
    compiled.policies.length > 0 &&
    enforcePolicies(ctx.runtime, info, compiled.policies, headers, { path: path.slice(0, 256) }) !== undefined
  ) {
    return answer(ctx, info, stream, 403);
  }
  // Reset while its HEADERS were handled: nothing to send, and no slot to hold ('close' is due).
  if (stream.destroyed) return;
  // Counted per client (address, or IPv6 /64).
  const client = clientKey(info.client.address);
  if (!ctx.clientStreams.acquire(client)) {
    ctx.runtime.requestLimited(info.routeId, 'client-streams', info.client.address);
    return answer(ctx, info, stream, 429);
  }
  let holdsSlot = true;
  const release = () => {
    if (!holdsSlot) return;
    holdsSlot = false;
    ctx.clientStreams.release(client);
  };
  stream.once('close', release);
  const route = compiled.route;
  const authority = pseudoHeader(headers, ':authority') ?? info.serverName ?? '';
  const forward: Forward = {
    ctx,
    info,
    stream,
    route,
    ended,
    method: pseudoHeader(headers, ':method') ?? 'GET',
    path,
    authority,
    headers,
    release,
  };
  if (route.backendProtocol === 'http1' || route.backendProtocol === 'https') return toHttp1(forward);
  return toHttp2(forward);
}

interface Forward {
  readonly ctx: ProxyContext;
  readonly info: ConnectionInfo;
  readonly stream: ServerHttp2Stream;
  readonly route: EdgeRoute;
  /** The request has no body (END_STREAM on its HEADERS frame). */
  readonly ended: boolean;
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  /** The client's request headers, as received. */
  readonly headers: IncomingHttpHeaders;
  /** Gives back the stream's `maxStreamsPerClient` slot (once; the stream's 'close' calls it too). */
  readonly release: () => void;
}

function fail(f: Forward, reason: string): void {
  auditBackendFailure(f.ctx.runtime, f.info, f.route, reason);
  answer(f.ctx, f.info, f.stream, 502);
}

function target(f: Forward) {
  return {
    route: f.route,
    info: f.info,
    connectTimeoutMs: f.ctx.connectTimeoutMs,
    dialTimer: f.ctx.runtime.metrics.dialSeconds,
  };
}

/**
 * `streamIdleTimeout`: ends a stream with no HEADERS or DATA either way for that long (the
 * stream timer follows reads and writes): 408 when no response began, else RST_STREAM CANCEL;
 * `cancel` cancels the backend request. The timer runs while the request body is unfinished and
 * from the response headers on; a stream waiting for its response headers after the request
 * ended is left to the response deadline. Returns what to call when the response headers go out.
 */
function watchIdle(f: Forward, cancel: () => void): () => void {
  const { stream, ctx, info } = f;
  const timeoutMs = ctx.streamIdleTimeoutMs;
  stream.on('timeout', () => {
    if (stream.destroyed || stream.closed) return;
    if (!stream.headersSent && (f.ended || stream.readableEnded)) return;
    f.release();
    ctx.runtime.requestLimited(info.routeId, 'stream-idle', info.client.address);
    cancel();
    if (stream.headersSent) {
      resetStream(stream, constants.NGHTTP2_CANCEL);
      return;
    }
    answer(ctx, info, stream, 408);
    // §8.1: a complete response before the request ended; the client may stop sending. The 408
    // ended the writable side, so close() adds no END_STREAM: it resets once the body is out.
    stream.close(constants.NGHTTP2_NO_ERROR);
  });
  if (!f.ended) {
    stream.setTimeout(timeoutMs);
    stream.once('end', () => {
      if (!stream.headersSent) stream.setTimeout(0);
    });
  }
  return () => {
    if (!stream.closed) stream.setTimeout(timeoutMs);
  };
}

function toHttp1(f: Forward): void {
  const { stream, ctx, route } = f;
  const request = route.backendProtocol === 'https' ? httpsRequest : httpRequest;
  const upstream = request({
    method: f.method,
    path: f.path,
    headers: backendRequestHeaders(f.headers, f.info.client.address, f.authority, { host: f.authority }),
    agent: ctx.pool.agent(target(f)),
  });
  const disarm = responseDeadline(
    ctx.deadlines,
    stream,
    () => upstream.destroy(new Error('response-timeout')),
    f.ended || stream.readableEnded,
  );
  // The edge cancels the backend request (client gone, idle, or an answer it cannot pass on): its
  // end is no backend failure.
  let cancelled = false;
  const cancel = () => {
    disarm();
    cancelled = true;
    stream.unpipe(upstream);
    upstream.destroy();
  };
  const refuse = (reason: string) => {
    cancel();
    fail(f, reason);
  };
  const responded = watchIdle(f, cancel);
  let answered = false;
  upstream.on('response', (incoming: IncomingMessage) => {
    answered = true;
    disarm();
    const status = incoming.statusCode ?? 0;
    if (!sendable(status)) return refuse(MALFORMED);
    ctx.runtime.metrics.httpResponses.inc({ route: route.id, status });
    if (stream.destroyed || stream.closed) return;
    try {
      stream.respond(clientResponseHeaders(incoming.headers, { ':status': status }));
    } catch {
      // A field HTTP/2 cannot carry (Node checks names and values as it encodes them).
      return refuse(MALFORMED);
    }
    responded();
    incoming.pipe(stream);
    incoming.on('error', () => resetStream(stream, constants.NGHTTP2_INTERNAL_ERROR));
  });
  // A 101 (or a 2xx to a CONNECT, which is never sent): Node's client emits no 'response' and,
  // with no listener, destroys the socket without an 'error'; the client would wait for the
  // response deadline or streamIdleTimeout. The other 1xx Node skips ('information').
  const switched = (_res: IncomingMessage, socket: { destroy(): void }) => {
    answered = true;
    socket.destroy();
    refuse('switching protocols');
  };
  upstream.on('upgrade', switched);
  upstream.on('connect', switched);
  upstream.on('error', (error: Error) => {
    disarm();
    if (cancelled) return;
    answered = true;
    if (!stream.headersSent) fail(f, error.message);
    else resetStream(stream, constants.NGHTTP2_INTERNAL_ERROR);
  });
  // Any other way the backend request ends without an answer is a failure now, not a wait.
  upstream.once('close', () => {
    if (cancelled || answered) return;
    disarm();
    cancelled = true;
    fail(f, 'stream-closed');
  });
  stream.once('close', () => {
    disarm();
    if (!upstream.writableFinished || !stream.writableFinished) cancel();
  });
  stream.on('error', ignore);
  if (f.ended) upstream.end();
  else stream.pipe(upstream);
}

/** Relays the backend's response body to the client with back-pressure (lighter than pipe). */
function relayBody(upstream: ClientHttp2Stream, stream: ServerHttp2Stream): void {
  upstream.on('data', (chunk: Buffer) => {
    if (!stream.write(chunk)) upstream.pause();
  });
  stream.on('drain', () => upstream.resume());
  upstream.once('end', () => {
    if (stream.destroyed) return;
    // Node ends the readable side of a stream reset with CANCEL as if its body were complete
    // ('end', then 'close'): such a reset is passed on as one, never as the end of the body.
    if (upstream.rstCode !== constants.NGHTTP2_NO_ERROR) resetStream(stream, upstream.rstCode);
    else stream.end();
  });
}

function toHttp2(f: Forward): void {
  const { stream, ctx, route } = f;
  let session;
  try {
    session = ctx.pool.session(target(f));
  } catch (error) {
    fail(f, error instanceof Error ? error.message : 'dial');
    return;
  }
  const pseudo: OutgoingHttpHeaders = {
    ':method': f.method,
    ':path': f.path,
    ':scheme': route.backendProtocol === 'h2' ? 'https' : 'http',
    ':authority': f.authority,
  };
  const upstream = session.request(
    backendRequestHeaders(f.headers, f.info.client.address, f.authority, pseudo),
    { endStream: f.ended },
  );
  // The edge cancels the backend stream (client gone, idle, no response in time, or an answer it
  // cannot pass on): its end is no backend failure.
  let cancelled = false;
  const cancel = () => {
    disarm();
    cancelled = true;
    if (upstream.closed) return;
    stream.unpipe(upstream);
    resetStream(upstream, constants.NGHTTP2_CANCEL);
  };
  const refuse = (reason: string) => {
    cancel();
    fail(f, reason);
  };
  const disarm = responseDeadline(
    ctx.deadlines,
    stream,
    () => refuse('response-timeout'),
    f.ended || stream.readableEnded,
  );
  const responded = watchIdle(f, cancel);
  // Only clients that announced `te: trailers` (gRPC) get a trailers frame; others end with the
  // last DATA frame, so their next request is not held up.
  const trailersWanted = wantsTrailers(f.headers);
  upstream.on('response', (h: IncomingHttpHeaders & IncomingHttpStatusHeader, flags: number) => {
    disarm();
    const status = h[':status'] ?? 0;
    if (!sendable(status)) return refuse(MALFORMED);
    ctx.runtime.metrics.httpResponses.inc({ route: route.id, status });
    if (stream.destroyed || stream.closed) return;
    // A trailers-only answer (gRPC errors) stays one HEADERS frame with END_STREAM.
    const endStream = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    try {
      stream.respond(clientResponseHeaders(h, { ':status': status }), {
        endStream,
        waitForTrailers: !endStream && trailersWanted,
      });
    } catch {
      // A field Node will not send (it checks names and values as it encodes them).
      return refuse(MALFORMED);
    }
    if (endStream) return;
    responded();
    relayBody(upstream, stream);
  });
  if (trailersWanted) {
    let trailers: OutgoingHttpHeaders | undefined;
    upstream.on('trailers', (t: IncomingHttpHeaders) => {
      trailers = clientResponseHeaders(t);
    });
    stream.on('wantTrailers', () => {
      try {
        stream.sendTrailers(trailers ?? {});
      } catch {
        // Trailer fields Node will not send: the body is out, so the client gets a reset, never
        // a clean end without the backend's status.
        resetStream(stream, constants.NGHTTP2_INTERNAL_ERROR);
      }
    });
  }
  upstream.on('error', (error: Error) => {
    disarm();
    if (cancelled) return;
    // Settled: the 'close' that follows (with the backend's reset code) must not reset the 502.
    cancelled = true;
    if (!stream.headersSent) fail(f, error.message);
    else resetStream(stream, constants.NGHTTP2_INTERNAL_ERROR);
  });
  upstream.on('close', () => {
    disarm();
    if (cancelled) return;
    if (!stream.headersSent && !stream.closed) fail(f, 'stream-closed');
    else if (stream.headersSent && !stream.closed && upstream.rstCode !== constants.NGHTTP2_NO_ERROR) {
      // A backend reset after the response began is passed on as a reset (CANCEL kept, any other
      // code as INTERNAL_ERROR: see resetStream), never as the end of a cut-off body.
      resetStream(stream, upstream.rstCode);
    }
  });
  // The client cancelled (gRPC deadline or RST_STREAM): cancel the backend stream too.
  stream.once('close', cancel);
  stream.on('error', ignore);
  if (!f.ended) stream.pipe(upstream);
}
