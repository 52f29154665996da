/**
 * The L7 reverse proxy for one HTTP/1.1 client request (HTTP/2 clients take h2-stream.ts):
 * policies, forwarding headers, then HTTP/2 (h2c or h2) or HTTP/1.1 to the backend, streaming
 * both bodies and relaying trailers. A backend that fails before answering yields a 502 with a
 * minimal body.
 */
import {
  type IncomingHttpHeaders,
  request as httpRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import { constants, type Http2Stream } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { addAbortSignal, type Duplex } from 'node:stream';
import type { EdgeRoute } from '../model.ts';
import type { ConnectionInfo, EdgeRuntime } from '../runtime.ts';
import type { BackendPool } from './backends.ts';
import { type ClientStreams, clientKey } from './client-streams.ts';
import { type DeadlineQueue, responseDeadline } from './deadlines.ts';
import { backendRequestHeaders, clientResponseHeaders, MALFORMED, MINIMAL_BODIES } from './headers.ts';
import { auditBackendFailure, enforcePolicies, misdirected } from './policies.ts';
import { requestTarget } from './request-target.ts';

export interface ProxyContext {
  readonly runtime: EdgeRuntime;
  readonly pool: BackendPool;
  readonly connectTimeoutMs: number;
  /** Response deadlines of the listener (`responseTimeout`). */
  readonly deadlines: DeadlineQueue;
  /** Requests in flight per client address (`maxStreamsPerClient`). */
  readonly clientStreams: ClientStreams;
  /** `streamIdleTimeout` of the listener. */
  readonly streamIdleTimeoutMs: number;
}

type ClientRequest = IncomingMessage;
type ClientResponse = ServerResponse;

/** Resets an answer already under way: HTTP/1.1 can only close the connection. */
function resetResponse(res: ClientResponse): void {
  res.destroy();
}

/**
 * Resets an HTTP/2 stream (a backend request, or a client response under way) with RST_STREAM
 * and nothing before it, whatever its sending side is doing. `close(code)` is no such reset:
 * while the stream is writable Node first ends its writable side, so DATA with END_STREAM goes
 * out ahead of the RST_STREAM (or alone: once the peer had ended its side the stream is closed
 * by that END_STREAM and the reset dropped), and the peer takes a cut-off body for a complete
 * one. `destroy(error)` resets without ending: an AbortError (what an aborted signal destroys
 * with) resets with CANCEL, any other error with INTERNAL_ERROR (or the session's GOAWAY code).
 * Node has no public way to reset with another code without ending first, so every code but
 * CANCEL becomes INTERNAL_ERROR: the peer still sees a failed stream, and CANCEL, the one that
 * matters to clients (gRPC CANCELLED, a cancelled backend request), keeps its meaning. NO_ERROR
 * becomes INTERNAL_ERROR too, since a reset with NO_ERROR reads as a clean end to Node peers.
 * The stream then emits that error (not for CANCEL): callers ignore it or know they reset it.
 */
export function resetStream(stream: Http2Stream, code: number): void {
  if (stream.destroyed) return;
  if (code === constants.NGHTTP2_CANCEL) addAbortSignal(AbortSignal.abort(), stream);
  else stream.destroy(new Error(`stream reset by the edge (code ${code})`));
}

function writeHead(res: ClientResponse, status: number, headers: OutgoingHttpHeaders): void {
  res.writeHead(status, headers);
}

/**
 * Starts the client's answer with a backend's status and headers; false when an HTTP/1.1 client
 * cannot be given them (a final status outside 200-999, such as 099, or a field Node will not
 * encode): Node would throw out of the backend's 'response' event and end the process.
 */
function relayHead(res: ClientResponse, status: number, headers: OutgoingHttpHeaders): boolean {
  if (!Number.isInteger(status) || status < 200 || status > 999) return false;
  try {
    writeHead(res, status, headers);
    return true;
  } catch {
    return false;
  }
}

function sendMinimal(res: ClientResponse, status: 400 | 403 | 421 | 429 | 502, close = status === 400): void {
  const body = MINIMAL_BODIES[status] ?? '';
  if (res.headersSent) {
    resetResponse(res);
    return;
  }
  writeHead(res, status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    // After a malformed request the rest of the connection's bytes cannot be trusted to frame;
    // a connection whose route is gone should not carry more requests.
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(body);
}

/** Handles one request on a terminated connection. */
export function proxyRequest(
  ctx: ProxyContext,
  info: ConnectionInfo,
  req: ClientRequest,
  res: ClientResponse,
): void {
  const { runtime } = ctx;
  const compiled = runtime.table().terminating(info);
  res.once('finish', () =>
    runtime.metrics.httpResponses.inc({ route: info.routeId, status: res.statusCode }),
  );
  if (compiled === undefined) {
    // The route was removed (or made L4) while this connection was open: no backend now, and
    // the client reconnects (its name may route elsewhere).
    sendMinimal(res, 502, true);
    return;
  }
  const checked = requestTarget(req);
  if (typeof checked === 'string') {
    runtime.log.debug('HTTP/1.1 request refused', { route: info.routeId, reason: checked });
    sendMinimal(res, 400);
    return;
  }
  const path = checked.path.slice(0, 256);
  if (misdirected(runtime, info, checked.authority ?? '', { path })) {
    sendMinimal(res, 421);
    return;
  }
  if (enforcePolicies(runtime, info, compiled.policies, req.headers, { path }) !== undefined) {
    sendMinimal(res, 403);
    return;
  }
  // `maxStreamsPerClient`: the request holds a slot of its client address until its response
  // is done or its connection closed ('close' comes once either way).
  // Counted per client (address, or IPv6 /64).
  const client = clientKey(info.client.address);
  if (!ctx.clientStreams.acquire(client)) {
    runtime.requestLimited(info.routeId, 'client-streams', info.client.address);
    sendMinimal(res, 429);
    return;
  }
  res.once('close', () => ctx.clientStreams.release(client));
  const route = compiled.route;
  const authority = checked.authority ?? info.serverName ?? '';
  const headers = backendRequestHeaders(req.headers, info.client.address, authority);
  const target = {
    route,
    info,
    connectTimeoutMs: ctx.connectTimeoutMs,
    dialTimer: runtime.metrics.dialSeconds,
  };
  const fail = (reason: string) => {
    auditBackendFailure(runtime, info, route, reason);
    sendMinimal(res, 502);
  };
  if (route.backendProtocol === 'h2c' || route.backendProtocol === 'h2') {
    forwardHttp2(ctx, route, req, res, { headers, authority, path: checked.path, fail, target });
  } else {
    forwardHttp1(ctx, req, res, { headers, authority, path: checked.path, fail, target });
  }
}

interface Forward {
  readonly headers: ReturnType<typeof backendRequestHeaders>;
  readonly authority: string;
  /** Origin-form target (an absolute-form one reduced by requestTarget). */
  readonly path: string;
  readonly fail: (reason: string) => void;
  readonly target: Parameters<BackendPool['session']>[0];
}

function forwardHttp2(
  ctx: ProxyContext,
  route: EdgeRoute,
  req: ClientRequest,
  res: ClientResponse,
  f: Forward,
): void {
  let session;
  try {
    session = ctx.pool.session(f.target);
  } catch (error) {
    f.fail(error instanceof Error ? error.message : 'dial');
    return;
  }
  const scheme = route.backendProtocol === 'h2' ? 'https' : 'http';
  const upstream = session.request({
    ...f.headers,
    ':method': req.method ?? 'GET',
    ':path': f.path,
    ':scheme': scheme,
    ':authority': f.authority,
  });
  // The edge cancels the backend request (client gone, or no response in time): its end is no
  // backend failure.
  let cancelled = false;
  const cancel = () => {
    if (upstream.closed) return;
    cancelled = true;
    req.unpipe(upstream);
    resetStream(upstream, constants.NGHTTP2_CANCEL);
  };
  const stopTimer = responseDeadline(ctx.deadlines, req, () => {
    cancel();
    f.fail('response-timeout');
  });
  upstream.on('response', (headers: IncomingHttpHeaders & { ':status'?: number }) => {
    stopTimer();
    const status = headers[':status'] ?? 502;
    if (!relayHead(res, status, clientResponseHeaders(headers))) {
      cancel();
      f.fail(MALFORMED);
      return;
    }
    upstream.pipe(res, { end: false });
    // Node ends the readable side of a stream reset with CANCEL as if its body were complete
    // ('end', then 'close'): only an end without a reset ends the response.
    upstream.once('end', () => {
      if (upstream.rstCode === constants.NGHTTP2_NO_ERROR) res.end();
      else resetResponse(res);
    });
  });
  upstream.on('trailers', (trailers: IncomingHttpHeaders) =>
    res.addTrailers(clientResponseHeaders(trailers)),
  );
  upstream.on('error', (error: Error) => {
    stopTimer();
    if (cancelled) return;
    if (!res.headersSent) f.fail(error.message);
    else resetResponse(res);
  });
  upstream.on('close', () => {
    stopTimer();
    if (cancelled) return;
    // A backend RST_STREAM after headers (e.g. a cancelled gRPC call) is passed on as a reset.
    if (res.headersSent && !res.writableEnded && upstream.rstCode !== constants.NGHTTP2_NO_ERROR) {
      resetResponse(res);
    } else if (!res.headersSent && !res.writableEnded) {
      f.fail('stream-closed');
    }
  });
  // The client cancelled (gRPC deadline or RST_STREAM): cancel the backend stream too.
  res.once('close', cancel);
  req.pipe(upstream);
}

function forwardHttp1(ctx: ProxyContext, req: ClientRequest, res: ClientResponse, f: Forward): void {
  const tls = f.target.route.backendProtocol === 'https';
  const request = tls ? httpsRequest : httpRequest;
  const upstream = request({
    method: req.method,
    path: f.path,
    headers: { ...f.headers, host: f.authority },
    agent: ctx.pool.agent(f.target),
  });
  const stopTimer = responseDeadline(ctx.deadlines, req, () => {
    upstream.destroy(new Error('response-timeout'));
  });
  upstream.on('response', (incoming: IncomingMessage) => {
    stopTimer();
    if (!relayHead(res, incoming.statusCode ?? 502, clientResponseHeaders(incoming.headers))) {
      upstream.destroy();
      f.fail(MALFORMED);
      return;
    }
    // Registered before pipe so the trailers are added before pipe ends the response.
    incoming.on('end', () => {
      if (Object.keys(incoming.trailers).length > 0)
        res.addTrailers(clientResponseHeaders(incoming.trailers));
    });
    incoming.pipe(res);
    incoming.on('error', () => res.destroy());
  });
  // A protocol switch the client did not ask for through the upgrade path: Node would close the
  // socket without an 'error' (socket hang up at the client); it is a backend failure.
  upstream.on('upgrade', (_incoming: IncomingMessage, socket: Duplex) => {
    stopTimer();
    socket.destroy();
    f.fail('switching protocols');
  });
  upstream.on('error', (error: Error) => {
    stopTimer();
    if (!res.headersSent) f.fail(error.message);
    else resetResponse(res);
  });
  res.once('close', () => {
    if (!upstream.writableFinished || !res.writableFinished) upstream.destroy();
  });
  req.pipe(upstream);
}
