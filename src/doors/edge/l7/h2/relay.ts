/**
 * The HTTP/2 frame relay (ADR 0150): a terminated client connection that speaks h2, relayed
 * frame by frame to a small pool of HTTP/2 backend connections (h2c, or h2 over TLS). Each
 * client stream maps to one backend stream; headers are decoded, checked and re-encoded (route
 * policies, forwarding headers from the real client address), DATA is passed on under both
 * sides' flow control, trailers and resets are carried across. Replaces node:http2 (its per-stream objects cost 4–5 times HAProxy's
 * CPU per request) for the one case it covers; everything else keeps the node:http2 path.
 * (Over 400 lines: the two roles share the stream object and its state machine.)
 */
import type { Duplex } from 'node:stream';
import { backendKey, type EdgeRoute } from '../../model.ts';
import type { ConnectionInfo, EdgeRuntime } from '../../runtime.ts';
import type { EdgeMetrics } from '../../metrics.ts';
import { Budget } from '../budget.ts';
import { type ClientStreams, clientKey } from '../client-streams.ts';
import type { Deadline, DeadlineQueue } from '../deadlines.ts';
import { MINIMAL_BODIES } from '../headers.ts';
import { enforcePolicies, misdirected } from '../policies.ts';
import { createHalf, enqueue, H2Endpoint, type LocalSettings, type StreamHalf } from './endpoint.ts';
import {
  backendRequest,
  clientResponse,
  parseRequest,
  policyView,
  type RequestHead,
  requestTrailers,
  responseStatus,
  validTrailers,
} from './fields.ts';
import { ConnectionError, ERROR, StreamError } from './frames.ts';
import type { FieldList } from './hpack.ts';

/** How to reach a backend (the shape of backends.ts's BackendTarget, which imports this file). */
export interface BackendTarget {
  readonly route: EdgeRoute;
  readonly info: ConnectionInfo;
  readonly connectTimeoutMs: number;
  readonly dialTimer?: EdgeMetrics['dialSeconds'];
}

/** What the relay of one listener needs. */
export interface RelayContext {
  readonly runtime: EdgeRuntime;
  readonly deadlines: DeadlineQueue;
  readonly connectTimeoutMs: number;
  readonly pool: RelayPool;
  /** Requests in flight per client address (`maxStreamsPerClient`). */
  readonly clientStreams: ClientStreams;
  /** A coarse clock (milliseconds) the idle sweep advances; streams stamp their last frame with it. */
  readonly clock: { now: number };
}

/**
 * Client connections: 128 streams, 1 MiB per stream (large gRPC messages do not wait for a
 * WINDOW_UPDATE every 64 KiB), a 4 MiB connection window given back only as data is passed on
 * (what one client can make the relay buffer), a 64 KiB header list.
 */
export const RELAY_SETTINGS: LocalSettings = {
  maxConcurrentStreams: 128,
  streamWindow: 1024 * 1024,
  connectionWindow: 4 * 1024 * 1024,
  eagerConnectionWindow: false,
  maxHeaderListSize: 64 * 1024,
};

/**
 * Backend connections, shared by all clients: the connection window is topped up as data
 * arrives, so a client that stops reading holds up only its own streams. Their windows are the
 * 64 KiB of RFC 9113's default (HAProxy's too): what a client that does not read can make the
 * relay hold is 64 KiB per stream it has in flight (at most `maxStreamsPerClient`), and a backend
 * on the same network still refills one window in well under a millisecond.
 */
const BACKEND_SETTINGS: LocalSettings = {
  ...RELAY_SETTINGS,
  streamWindow: 64 * 1024,
  eagerConnectionWindow: true,
};

/**
 * Header octets of one request (its headers, or its trailers) that never count against the
 * client's header budget (ClientStreams: the octets the relay sends to backends beyond what the
 * blocks cost on the wire), so ordinary requests (a bearer token, cookies) never draw on it. A
 * request over the budget is answered 431; trailers over it reset the stream.
 */
const HEADER_ALLOWANCE = 4 * 1024;

/** HPACK's size of a field list (RFC 7541 §4.1: name, value and 32 octets per field). */
function listSize(fields: FieldList): number {
  let n = 0;
  for (let i = 0; i < fields.length; i++) n += (fields[i] ?? '').length;
  return n + 16 * fields.length;
}

/**
 * Stream resets a client may cause (its RST_STREAM, or ours for its stream errors): a burst, then
 * a rate per second. Rapid reset (CVE-2023-44487) opens and cancels streams faster than any
 * limit on open streams sees; past the budget the connection ends with ENHANCE_YOUR_CALM.
 */
const RESET_BURST = 1000;
const RESETS_PER_SECOND = 500;

/**
 * RST_STREAMs the relay sends on one backend connection before it takes no new streams and
 * closes once its streams are done (ADR 0150 finding 5). Client cancels become resets on shared
 * backend connections, and backends guard against rapid reset per connection (nghttp2: a burst
 * of 1000; Envoy: more than half of the streams reset early): a connection retired this early,
 * with at most MAX_BACKEND_STREAMS more resets from the streams it still carries, stays below
 * those guards, so one client's cancels never make the backend drop everybody's streams.
 */
export const RESETS_PER_BACKEND_CONNECTION = 100;

/** Streams one backend connection carries at most (below a backend's own, larger limit). */
const MAX_BACKEND_STREAMS = 256;

/** The first `:method` of a request's fields. */
function methodOf(fields: FieldList): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === ':method') return fields[i + 1];
  return undefined;
}

/** The first value of a regular field (`from`: where they start), lower-case `name`. */
function fieldOf(fields: FieldList, from: number, name: string): string | undefined {
  for (let i = from; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

/** True when the relay serves this route's HTTP/2 clients (h2c or h2 backend, no PROXY header). */
export function relayable(route: EdgeRoute): boolean {
  return (route.backendProtocol === 'h2c' || route.backendProtocol === 'h2') && !route.backendProxyProtocol;
}

/** One relayed request: a client stream and, once dispatched, its backend stream. */
class RelayStream {
  readonly conn: ClientConnection;
  readonly client: StreamHalf;
  /** Its id stays 0 until the backend connection has a stream slot for it. */
  readonly backend: StreamHalf;
  backendConn: BackendConnection | undefined;
  target: BackendTarget | undefined;
  route: EdgeRoute | undefined;
  wantsTrailers = false;
  /** The request's `content-length`: its DATA must add up to it (RFC 9113 §8.1.1). */
  expectedLength: number | undefined;
  /** Request body bytes received. */
  bodyBytes = 0;
  /** A HEAD request: a local answer has headers only (RFC 9110 §9.3.2). */
  head = false;
  /** Response HEADERS went to the client (from the backend or a local answer). */
  responded = false;
  /** The backend answered with a final status. */
  gotResponse = false;
  /** The backend side is finished or was never used: nothing more comes from it. */
  backendDone = false;
  deadline: Deadline | undefined;
  /** The backend request as first sent, kept to send it again after REFUSED_STREAM. */
  request: { readonly fields: FieldList; readonly end: boolean } | undefined;
  /** Body bytes went to the backend: the request can no longer be sent again. */
  bodySent = false;
  retries = 0;
  /** How the client ended its request (END_STREAM, or trailers), kept for a retry. */
  requestEnd: true | FieldList | undefined;
  /** The stream holds one of its client address's `maxStreamsPerClient` slots. */
  holdsSlot = false;
  /** The coarse clock when a HEADERS or DATA frame of this request last went either way. */
  touched: number;

  constructor(conn: ClientConnection, id: number) {
    this.conn = conn;
    this.client = createHalf(id, conn.peerInitialWindow, RELAY_SETTINGS.streamWindow);
    this.backend = createHalf(0, 0, BACKEND_SETTINGS.streamWindow);
    this.touched = conn.now;
  }
}

/** The client's side: the terminated TLS connection, server role. */
export class ClientConnection extends H2Endpoint {
  readonly #ctx: RelayContext;
  readonly info: ConnectionInfo;
  readonly #streams = new Map<number, RelayStream>();
  #lastStreamId = 0;
  #peerGoaway = false;
  readonly #onGone: (c: ClientConnection) => void;
  readonly #resets = new Budget(RESET_BURST, RESETS_PER_SECOND);
  #target: BackendTarget | undefined;
  /** The client (address or IPv6 /64) its per-client limits are counted under. */
  readonly key: string;

  constructor(
    socket: Duplex,
    info: ConnectionInfo,
    ctx: RelayContext,
    onGone: (c: ClientConnection) => void,
  ) {
    super(socket, RELAY_SETTINGS, 'server');
    this.info = info;
    this.key = clientKey(info.client.address);
    this.#ctx = ctx;
    this.#onGone = onGone;
  }

  /** Open streams (tests, drain). */
  get streams(): number {
    return this.#streams.size;
  }

  /** The coarse clock of the listener's idle sweep. */
  get now(): number {
    return this.#ctx.clock.now;
  }

  /**
   * Ends the streams with no HEADERS or DATA either way since `cutoff` (`streamIdleTimeout`):
   * 408 when no response began, else a reset; the backend stream is cancelled. A stream waiting
   * for its response headers is left to the response deadline.
   */
  sweepIdle(cutoff: number): void {
    for (const s of this.#streams.values()) {
      if (s.touched >= cutoff || s.deadline !== undefined) continue;
      this.#ctx.runtime.requestLimited(this.info.routeId, 'stream-idle', this.info.client.address);
      if (!s.responded) {
        this.answer(s, 408);
        continue;
      }
      const half = s.client;
      if (!half.localClosed) this.writeRst(half.id, ERROR.CANCEL);
      half.localClosed = true;
      half.remoteClosed = true;
      half.queue.length = 0;
      s.backendConn?.cancel(s, ERROR.CANCEL);
      this.settle(s);
    }
  }

  /** Drain: GOAWAY now, close when the last stream is done. */
  drain(): void {
    this.goaway();
    if (this.#streams.size === 0) this.close();
  }

  protected lastPeerStream(): number {
    return this.#lastStreamId;
  }

  protected checkKnown(streamId: number): void {
    if (streamId > this.#lastStreamId) {
      throw new ConnectionError(ERROR.PROTOCOL_ERROR, 'Frame on an idle stream');
    }
  }

  protected onHeaders(
    id: number,
    fields: FieldList,
    tooLarge: boolean,
    endStream: boolean,
    wireBytes: number,
  ): void {
    const existing = this.#streams.get(id);
    if (existing !== undefined) {
      existing.touched = this.#ctx.clock.now;
      // Trailers over SETTINGS_MAX_HEADER_LIST_SIZE are not passed on cut short: the stream ends.
      if (tooLarge) throw new StreamError(id, ERROR.PROTOCOL_ERROR, 'Trailers too large');
      return this.#trailers(existing, fields, endStream, wireBytes);
    }
    // §5.1.1: client streams are odd and increase; an old id names a closed stream (ignored).
    if (id % 2 === 0) throw new ConnectionError(ERROR.PROTOCOL_ERROR, 'Even stream id from a client');
    if (id <= this.#lastStreamId) {
      // A closed stream's block is decoded (HPACK state) and ignored, at a price.
      this.noise();
      return;
    }
    this.#lastStreamId = id;
    if (this.goingAway) throw new StreamError(id, ERROR.REFUSED_STREAM, 'Going away');
    if (this.#streams.size >= RELAY_SETTINGS.maxConcurrentStreams) {
      throw new StreamError(id, ERROR.REFUSED_STREAM, 'Too many streams');
    }
    const head = tooLarge ? undefined : parseRequest(fields);
    if (typeof head === 'string') throw new StreamError(id, ERROR.PROTOCOL_ERROR, head);
    if (endStream && (head?.contentLength ?? 0) > 0) {
      throw new StreamError(id, ERROR.PROTOCOL_ERROR, 'content-length without a body');
    }
    const s = new RelayStream(this, id);
    s.expectedLength = head?.contentLength;
    this.#streams.set(id, s);
    // From the fields, not the parsed head: a 431 answer (no head) must know it too.
    s.head = methodOf(fields) === 'HEAD';
    if (endStream) s.client.remoteClosed = true;
    if (head === undefined) return this.answer(s, 431);
    this.#request(s, fields, head, wireBytes);
  }

  /** Charges the header octets a block costs beyond its wire size and allowance; false: over budget. */
  #chargeHeaders(fields: FieldList, wireBytes: number): boolean {
    const excess = listSize(fields) - Math.max(wireBytes, HEADER_ALLOWANCE);
    if (this.#ctx.clientStreams.chargeHeaders(this.key, excess)) return true;
    this.#ctx.runtime.requestLimited(this.info.routeId, 'header-amplification', this.info.client.address);
    return false;
  }

  #request(s: RelayStream, fields: FieldList, head: RequestHead, wireBytes: number): void {
    const { runtime } = this.#ctx;
    const info = this.info;
    const compiled = runtime.table().terminating(info);
    if (compiled === undefined) {
      // The route is gone: GOAWAY tells the client to open a new connection, which its name may
      // route elsewhere, instead of reusing this one for more 502s.
      this.goaway();
      return this.answer(s, 502);
    }
    const route = compiled.route;
    if (!relayable(route)) {
      // The route changed under an open connection: a new connection takes the other path.
      this.goaway();
      return this.answer(s, 502);
    }
    if (head.method === 'CONNECT') return this.answer(s, 501);
    const path = head.path ?? '/';
    // Without :authority a Host field may name the host (RFC 9113 §8.3.1); it is checked as on
    // the node:http2 path, though the backend gets the server name as :authority and no Host.
    const requested = head.authority ?? fieldOf(fields, head.regular, 'host') ?? '';
    if (misdirected(runtime, info, requested, { path: path.slice(0, 256) })) {
      return this.answer(s, 421);
    }
    if (
      compiled.policies.length > 0 &&
      enforcePolicies(runtime, info, compiled.policies, policyView(fields, head.regular), {
        path: path.slice(0, 256),
      }) !== undefined
    ) {
      return this.answer(s, 403);
    }
    const authority = head.authority ?? info.serverName ?? '';
    s.route = route;
    s.wantsTrailers = head.wantsTrailers;
    // One target per connection and route (the route object changes only on a reload).
    if (this.#target?.route !== route) {
      this.#target = {
        route,
        info,
        connectTimeoutMs: this.#ctx.connectTimeoutMs,
        dialTimer: runtime.metrics.dialSeconds,
      };
    }
    s.target = this.#target;
    const scheme = route.backendProtocol === 'h2' ? 'https' : 'http';
    const request = backendRequest(fields, head, authority, info.client.address, scheme);
    if (!this.#chargeHeaders(request, wireBytes)) return this.answer(s, 431);
    // A client's share of the backend: at most a quarter of what the pool can carry, so one
    // client (address or /64) never holds every stream slot the backend offers.
    const { pool } = this.#ctx;
    const refusal = this.#ctx.clientStreams.take(this.key, pool.share(route));
    if (refusal !== undefined) {
      runtime.requestLimited(info.routeId, refusal, info.client.address);
      return this.answer(s, 429);
    }
    s.holdsSlot = true;
    let backend: BackendConnection;
    try {
      backend = pool.connection(s.target);
    } catch (error) {
      return this.fail(s, error instanceof Error ? error.message : 'dial');
    }
    backend.open(s, request, s.client.remoteClosed);
    if (s.client.remoteClosed) this.#armDeadline(s);
  }

  #trailers(s: RelayStream, fields: FieldList, endStream: boolean, wireBytes: number): void {
    if (s.client.remoteClosed)
      throw new StreamError(s.client.id, ERROR.STREAM_CLOSED, 'HEADERS after END_STREAM');
    if (!endStream || !validTrailers(fields)) {
      throw new StreamError(s.client.id, ERROR.PROTOCOL_ERROR, 'Malformed trailers');
    }
    if (s.expectedLength !== undefined && s.bodyBytes !== s.expectedLength) {
      throw new StreamError(s.client.id, ERROR.PROTOCOL_ERROR, 'DATA does not match content-length');
    }
    s.client.remoteClosed = true;
    if (!s.backendDone) {
      const trailers = requestTrailers(fields);
      if (!this.#chargeHeaders(trailers, wireBytes)) {
        throw new StreamError(s.client.id, ERROR.ENHANCE_YOUR_CALM, 'Trailers over the header budget');
      }
      s.requestEnd = trailers.length > 0 ? trailers : true;
      s.backend.pendingEnd = s.requestEnd;
      s.backendConn?.send(s);
      this.#armDeadline(s);
    }
    this.settle(s);
  }

  protected onData(id: number, data: Buffer, endStream: boolean, flowLength: number): void {
    const s = this.#streams.get(id);
    if (s === undefined) {
      if (id > this.#lastStreamId) throw new ConnectionError(ERROR.PROTOCOL_ERROR, 'DATA on an idle stream');
      this.creditConnection(flowLength);
      return;
    }
    const half = s.client;
    half.held += flowLength;
    s.touched = this.#ctx.clock.now;
    if (half.remoteClosed) throw new StreamError(id, ERROR.STREAM_CLOSED, 'DATA after END_STREAM');
    if (flowLength > half.recvWindow)
      throw new StreamError(id, ERROR.FLOW_CONTROL_ERROR, 'DATA beyond the stream window');
    half.recvWindow -= flowLength;
    if (s.expectedLength !== undefined) {
      // §8.1.1: a body that does not match its content-length is malformed, and is never
      // passed on as complete (a backend would end the shared connection over it).
      s.bodyBytes += data.length;
      if (s.bodyBytes > s.expectedLength || (endStream && s.bodyBytes !== s.expectedLength)) {
        throw new StreamError(id, ERROR.PROTOCOL_ERROR, 'DATA does not match content-length');
      }
    }
    if (endStream) half.remoteClosed = true;
    if (s.backendDone || s.backendConn === undefined) {
      // Nobody takes this body any more (answered locally, or the backend finished): drop it.
      this.credit(half, flowLength);
    } else {
      this.credit(half, flowLength - data.length);
      if (data.length > 0) enqueue(s.backend, data);
      if (endStream) {
        s.requestEnd = true;
        s.backend.pendingEnd = true;
      }
      s.backendConn.send(s);
      if (endStream) this.#armDeadline(s);
    }
    this.settle(s);
  }

  protected onReset(id: number, _code: number): void {
    if (!this.#resets.spend()) throw new ConnectionError(ERROR.ENHANCE_YOUR_CALM, 'Too many stream resets');
    const s = this.#streams.get(id);
    if (s === undefined) return;
    s.client.localClosed = true;
    s.client.remoteClosed = true;
    s.client.queue.length = 0;
    // The client cancelled (gRPC deadline or RST_STREAM): cancel the backend stream too, on the
    // client's reset budget.
    if (s.backendConn?.cancel(s, ERROR.CANCEL) === true) this.#chargeReset();
    this.settle(s);
  }

  protected onStreamWindow(id: number, increment: number): void {
    const s = this.#streams.get(id);
    if (s === undefined) {
      if (id > this.#lastStreamId)
        throw new ConnectionError(ERROR.PROTOCOL_ERROR, 'WINDOW_UPDATE on an idle stream');
      return;
    }
    this.growStreamWindow(id, s.client, increment);
    this.send(s);
  }

  protected resume(half: StreamHalf): void {
    const s = this.#streams.get(half.id);
    if (s !== undefined) this.send(s);
  }

  protected onInitialWindow(delta: number): void {
    this.shiftStreamWindows(
      Array.from(this.#streams.values(), (s) => s.client),
      delta,
    );
    if (delta > 0) for (const s of this.#streams.values()) this.send(s);
  }

  protected onGoaway(): void {
    this.#peerGoaway = true;
    if (this.#streams.size === 0) this.close();
  }

  protected onTerminate(): void {
    for (const s of this.#streams.values()) {
      this.#disarm(s);
      s.client.localClosed = true;
      s.client.remoteClosed = true;
      // Cancels of a client that goes away count towards its reset budget too (before the slot
      // goes back, which may forget the client).
      if (s.backendConn?.cancel(s, ERROR.CANCEL) === true) this.#chargeReset();
      this.#releaseSlot(s);
    }
    this.#streams.clear();
    this.#onGone(this);
  }

  /** Sends what the client half can take now and gives the backend that much window back. */
  send(s: RelayStream): void {
    if (this.closed) return;
    const sent = this.flushHalf(s.client);
    if (sent > 0 && s.backendConn !== undefined) s.backendConn.credit(s.backend, sent);
    this.settle(s);
  }

  /** Forgets a stream both sides are done with; a response sent before the request ended resets the rest. */
  settle(s: RelayStream): void {
    const half = s.client;
    if (half.localClosed && !half.remoteClosed && s.backendDone) {
      // §8.1: a complete response before the request ended; the client may stop sending.
      this.writeRst(half.id, ERROR.NO_ERROR);
      half.remoteClosed = true;
    }
    if (!half.localClosed || !half.remoteClosed) return;
    if (this.#streams.get(half.id) !== s) return;
    this.#streams.delete(half.id);
    this.release(half);
    this.#disarm(s);
    if (!s.backendDone) s.backendConn?.cancel(s, ERROR.CANCEL);
    this.#releaseSlot(s);
    if ((this.goingAway || this.#peerGoaway) && this.#streams.size === 0) this.close();
  }

  /** The backend's final response headers. */
  respond(s: RelayStream, status: number, fields: FieldList, endStream: boolean): void {
    this.#disarm(s);
    this.#ctx.runtime.metrics.httpResponses.inc({ route: this.info.routeId, status });
    if (s.client.localClosed || this.closed) return;
    s.responded = true;
    this.writeHeaders(s.client.id, fields, endStream);
    if (endStream) s.client.localClosed = true;
    this.settle(s);
  }

  /** A local answer with a minimal body (403, 421, 431, 501, 502); a reset once a response began. */
  answer(s: RelayStream, status: number): void {
    this.#ctx.runtime.metrics.httpResponses.inc({ route: this.info.routeId, status });
    this.#disarm(s);
    if (!s.backendDone) s.backendConn?.cancel(s, ERROR.CANCEL);
    s.backendDone = true;
    const half = s.client;
    if (half.localClosed || this.closed) return;
    if (s.responded) {
      this.writeRst(half.id, ERROR.INTERNAL_ERROR);
      half.localClosed = true;
      half.remoteClosed = true;
      half.queue.length = 0;
      this.settle(s);
      return;
    }
    s.responded = true;
    const body = Buffer.from(MINIMAL_BODIES[status] ?? '', 'latin1');
    this.writeHeaders(
      half.id,
      [
        ':status',
        String(status),
        'content-type',
        'text/plain; charset=utf-8',
        'content-length',
        String(body.length),
      ],
      s.head,
    );
    if (s.head) {
      // A response to HEAD has no content (a DATA frame would be a protocol error to the client).
      half.localClosed = true;
      this.settle(s);
      return;
    }
    half.queue.push(body);
    half.pendingEnd = true;
    this.send(s);
  }

  /** The backend could not serve the request: audited, answered 502. */
  fail(s: RelayStream, reason: string): void {
    if (s.route !== undefined) this.#ctx.runtime.backendFailed(s.route, reason, this.info.client.address);
    this.answer(s, 502);
  }

  #armDeadline(s: RelayStream): void {
    if (s.deadline !== undefined || s.gotResponse || s.backendDone) return;
    s.deadline = this.#ctx.deadlines.arm(() => {
      s.deadline = undefined;
      s.backendConn?.cancel(s, ERROR.CANCEL);
      this.fail(s, 'response-timeout');
    });
  }

  #releaseSlot(s: RelayStream): void {
    if (!s.holdsSlot) return;
    s.holdsSlot = false;
    this.#ctx.clientStreams.release(this.key);
  }

  /** True when this client has more requests in flight than `share`. */
  overShare(share: number): boolean {
    return this.#ctx.clientStreams.count(this.key) > share;
  }

  /** Answers a request over the client's share of its backend 429. */
  limited(s: RelayStream): void {
    this.#ctx.runtime.requestLimited(this.info.routeId, 'client-streams', this.info.client.address);
    this.answer(s, 429);
  }

  /** A reset went to a shared backend connection because of this client. */
  #chargeReset(): void {
    this.#ctx.clientStreams.chargeReset(this.key);
  }

  #disarm(s: RelayStream): void {
    this.#ctx.deadlines.disarm(s.deadline);
    s.deadline = undefined;
  }
}

/** What a backend connection tells its pool. */
interface BackendEvents {
  /** Opens a queued or refused stream on another connection. */
  redispatch(s: RelayStream, fields: FieldList, end: boolean): void;
  /** Takes no new streams from now on (retired, GOAWAY, closed). */
  gone(c: BackendConnection): void;
  /** May it retire (too many resets)? Not while the backend has MAX_LINGERING retired open. */
  mayRetire(): boolean;
  /** Retired after too many resets; stays open for its streams. */
  retired(c: BackendConnection): void;
  /** Told to go away by the backend; stays open for its streams. */
  drained(c: BackendConnection): void;
  /** The socket is gone. */
  closed(c: BackendConnection): void;
  /** The backend's SETTINGS said how many streams a connection takes. */
  limit(streams: number): void;
}

/** One HTTP/2 connection to a backend, client role, shared by the streams of many clients. */
export class BackendConnection extends H2Endpoint {
  readonly #streams = new Map<number, RelayStream>();
  readonly #waiting: { s: RelayStream; fields: FieldList; end: boolean }[] = [];
  #nextId = 1;
  #settled = false;
  #peerGoaway = false;
  /** Takes no new streams (too many resets sent); closes when its streams are done. */
  #retired = false;
  /** No route names its backend any more: takes no new streams, closes when its own are done. */
  #removed = false;
  #resets = 0;
  /** Resets since the connection last asked to retire. */
  #resetsToRetire = 0;
  #handshake: NodeJS.Timeout | undefined;
  readonly #events: BackendEvents;

  constructor(socket: Duplex, handshakeTimeoutMs: number, events: BackendEvents) {
    super(socket, BACKEND_SETTINGS, 'client');
    this.#events = events;
    // A backend that accepts the connection and never sends its SETTINGS would hold the streams
    // queued for it: after the connect deadline (counted from the dial) they fail with 502.
    this.#handshake = setTimeout(() => this.terminate('backend-handshake-timeout'), handshakeTimeoutMs);
    this.#handshake.unref();
  }

  /** Takes new streams from the pool: it opens streams and its backend was not removed. */
  get usable(): boolean {
    return this.#opens && !this.#removed;
  }

  /** Opens streams (its own queued ones): not closed, not told to go away, not retired, ids left. */
  get #opens(): boolean {
    return (
      !this.closed && !this.goingAway && !this.#peerGoaway && !this.#retired && this.#nextId < 0x7fff0000
    );
  }

  /**
   * No route names its backend any more (a route swap): takes no new streams from the pool,
   * carries the ones it has to their end (queued ones included: they were routed before the
   * swap), then closes; an idle one closes at once.
   */
  drain(): void {
    if (this.#removed || this.closed) return;
    this.#removed = true;
    this.#events.gone(this);
    // A microtask: the pool drains a connection it dials for a stream it is about to open.
    queueMicrotask(() => this.#closeIfDone());
  }

  /** A connection that takes no new streams closes once it carries none. */
  #closeIfDone(): void {
    const leaving = this.#peerGoaway || this.#retired || this.#removed;
    if (leaving && this.#streams.size === 0 && this.#waiting.length === 0) this.close();
  }

  /** Has a stream slot free now or once the backend's SETTINGS came (queued streams count). */
  get hasRoom(): boolean {
    return this.#streams.size + this.#waiting.length < (this.streamLimit ?? MAX_BACKEND_STREAMS);
  }

  /** Streams it carries at most, once the backend's SETTINGS said. */
  get streamLimit(): number | undefined {
    return this.#settled ? Math.min(this.peerMaxStreams, MAX_BACKEND_STREAMS) : undefined;
  }

  /** RST_STREAMs sent on this connection (tests). */
  get resets(): number {
    return this.#resets;
  }

  /**
   * Streams wait for the backend's SETTINGS: its stream limit may be below anything assumed, and
   * a stream over it comes back REFUSED_STREAM. That costs a new connection one round trip.
   */
  #limit(): number {
    return this.#settled ? Math.min(this.peerMaxStreams, MAX_BACKEND_STREAMS) : 0;
  }

  /** Every RST_STREAM sent counts towards the connection's reset budget (finding 5). */
  override writeRst(streamId: number, code: number): void {
    super.writeRst(streamId, code);
    this.#resets++;
    if (++this.#resetsToRetire >= RESETS_PER_BACKEND_CONNECTION && !this.#retired) {
      // The pool declines when MAX_LINGERING retired connections are still open: this one then
      // carries on, and tries again after as many resets more.
      if (this.#events.mayRetire()) this.#retire();
      else this.#resetsToRetire = 0;
    }
  }

  /** Stops taking streams; queued ones go to another connection; closes when the rest are done. */
  #retire(): void {
    this.#retired = true;
    this.#events.gone(this);
    this.#events.retired(this);
    for (const w of this.#waiting.splice(0)) this.#events.redispatch(w.s, w.fields, w.end);
    if (this.#streams.size === 0) queueMicrotask(() => this.close());
  }

  /** Starts the backend stream of `s`, or queues it until the backend has a free stream slot. */
  open(s: RelayStream, fields: FieldList, end: boolean): void {
    s.backendConn = this;
    if (this.#streams.size < this.#limit() && this.#opens) this.#start(s, fields, end);
    else this.#waiting.push({ s, fields, end });
  }

  #start(s: RelayStream, fields: FieldList, end: boolean): void {
    s.request = { fields, end };
    const id = this.#nextId;
    this.#nextId += 2;
    const half = s.backend;
    half.id = id;
    half.sendWindow = this.peerInitialWindow;
    this.#streams.set(id, s);
    this.writeHeaders(id, fields, end);
    if (end) {
      half.localClosed = true;
      half.pendingEnd = false;
    }
    this.send(s);
  }

  #openWaiting(): void {
    while (this.#waiting.length > 0 && this.#streams.size < this.#limit() && this.#opens) {
      const next = this.#waiting.shift();
      if (next !== undefined && !next.s.backendDone) this.#start(next.s, next.fields, next.end);
    }
  }

  /** Sends what the backend half can take now and gives the client that much window back. */
  send(s: RelayStream): void {
    if (s.backend.id === 0 || this.closed) return;
    const sent = this.flushHalf(s.backend);
    if (sent > 0) {
      s.bodySent = true;
      s.conn.credit(s.client, sent);
    }
    this.#settle(s);
  }

  /**
   * Resets the backend stream of `s` (client gone, deadline) or drops it from the queue; true
   * when a RST_STREAM went to the backend (resets the client caused are charged to it).
   */
  cancel(s: RelayStream, code: number): boolean {
    if (s.backendDone) return false;
    s.backendDone = true;
    const half = s.backend;
    if (half.id === 0) {
      const at = this.#waiting.findIndex((w) => w.s === s);
      if (at >= 0) this.#waiting.splice(at, 1);
      this.#closeIfDone();
      return false;
    }
    const reset = !half.localClosed || !half.remoteClosed;
    if (reset) this.writeRst(half.id, code);
    half.localClosed = true;
    half.remoteClosed = true;
    half.queue.length = 0;
    this.#forget(s);
    return reset;
  }

  #forget(s: RelayStream): void {
    if (this.#streams.get(s.backend.id) !== s) return;
    this.#streams.delete(s.backend.id);
    this.blocked.delete(s.backend);
    this.#openWaiting();
    this.#closeIfDone();
  }

  #settle(s: RelayStream): void {
    if (!s.backend.localClosed || !s.backend.remoteClosed) return;
    s.backendDone = true;
    this.#forget(s);
    s.conn.settle(s);
  }

  #stream(id: number): RelayStream | undefined {
    const s = this.#streams.get(id);
    if (s === undefined && (id % 2 === 0 || id >= this.#nextId)) {
      throw new ConnectionError(ERROR.PROTOCOL_ERROR, `Frame on stream ${id} the relay never opened`);
    }
    return s;
  }

  protected lastPeerStream(): number {
    return 0;
  }

  protected checkKnown(streamId: number): void {
    this.#stream(streamId);
  }

  protected onHeaders(id: number, fields: FieldList, tooLarge: boolean, endStream: boolean): void {
    const s = this.#stream(id);
    if (s === undefined) return;
    s.touched = s.conn.now;
    if (s.backend.remoteClosed) throw new StreamError(id, ERROR.STREAM_CLOSED, 'HEADERS after END_STREAM');
    if (!s.gotResponse) {
      const status = tooLarge ? undefined : responseStatus(fields);
      const out = status === undefined ? undefined : clientResponse(fields, status);
      if (status === undefined || out === undefined || (status < 200 && endStream)) {
        this.#malformed(s, 'malformed response headers');
        return;
      }
      // 1xx answers are not passed on (the node:http2 path does not either).
      if (status < 200) return;
      s.gotResponse = true;
      if (endStream) s.backend.remoteClosed = true;
      s.conn.respond(s, status, out, endStream);
      this.#settle(s);
      return;
    }
    if (!endStream) {
      this.#malformed(s, 'trailers without END_STREAM');
      return;
    }
    s.backend.remoteClosed = true;
    const trailers = tooLarge ? undefined : clientResponse(fields, undefined);
    // Only clients that announced `te: trailers` (gRPC) get a trailers frame; others end with the
    // last DATA frame, so their next request is not held up.
    s.client.pendingEnd = s.wantsTrailers && trailers !== undefined && trailers.length > 0 ? trailers : true;
    s.conn.send(s);
    this.#settle(s);
  }

  /** A stream error of the backend's making: reset it there, 502 (or reset) to the client. */
  #malformed(s: RelayStream, reason: string): void {
    this.cancel(s, ERROR.PROTOCOL_ERROR);
    s.conn.fail(s, reason);
  }

  protected onData(id: number, data: Buffer, endStream: boolean, flowLength: number): void {
    const s = this.#stream(id);
    if (s === undefined) return;
    s.touched = s.conn.now;
    const half = s.backend;
    if (half.remoteClosed) throw new StreamError(id, ERROR.STREAM_CLOSED, 'DATA after END_STREAM');
    if (!s.gotResponse) throw new StreamError(id, ERROR.PROTOCOL_ERROR, 'DATA before response headers');
    if (flowLength > half.recvWindow)
      throw new StreamError(id, ERROR.FLOW_CONTROL_ERROR, 'DATA beyond the stream window');
    half.recvWindow -= flowLength;
    if (endStream) half.remoteClosed = true;
    if (s.client.localClosed) {
      this.credit(half, flowLength);
    } else {
      this.credit(half, flowLength - data.length);
      if (data.length > 0) enqueue(s.client, data);
      if (endStream) s.client.pendingEnd = true;
      s.conn.send(s);
    }
    this.#settle(s);
  }

  /**
   * True when the backend did not process the request of `s` and it can go again (RFC 9113
   * §8.7: REFUSED_STREAM, or a stream above a GOAWAY's last id): no answer came, no body byte
   * went out, fewer than 3 tries so far.
   */
  #retryable(s: RelayStream): boolean {
    return !s.gotResponse && !s.bodySent && s.request !== undefined && s.retries < 3 && !s.backendDone;
  }

  /**
   * Takes the backend stream of `s` back to "not opened" for another try: its queued body, and
   * the request's end when the client sent it, stay to be sent on the new stream. Returns the
   * request to open again.
   */
  #rewind(s: RelayStream): { fields: FieldList; end: boolean } {
    const request = s.request ?? { fields: [], end: true };
    s.retries++;
    this.#streams.delete(s.backend.id);
    this.blocked.delete(s.backend);
    const half = s.backend;
    half.id = 0;
    half.localClosed = false;
    half.remoteClosed = false;
    half.recvWindow = BACKEND_SETTINGS.streamWindow;
    half.unacked = 0;
    // An END_STREAM on its own may have gone out (no body byte did): it must go again.
    if (!request.end && half.queue.length === 0 && half.pendingEnd === false && s.requestEnd !== undefined) {
      half.pendingEnd = s.requestEnd;
    }
    return request;
  }

  protected onReset(id: number, code: number): void {
    const s = this.#streams.get(id);
    if (s === undefined) return;
    if (code === ERROR.REFUSED_STREAM && this.#retryable(s)) {
      // §8.7: a refused stream was not processed; it goes again once a stream slot is free.
      const again = this.#rewind(s);
      if (this.#opens) this.#waiting.unshift({ s, ...again });
      else this.#events.redispatch(s, again.fields, again.end);
      this.#openWaiting();
      this.#closeIfDone();
      return;
    }
    const half = s.backend;
    half.localClosed = true;
    half.remoteClosed = true;
    half.queue.length = 0;
    s.backendDone = true;
    this.#forget(s);
    if (!s.gotResponse) {
      s.conn.fail(s, 'stream-closed');
      return;
    }
    const client = s.client;
    const complete = client.localClosed || client.pendingEnd !== false;
    if (!complete) {
      // A reset after the response began (a cancelled gRPC call) is passed on as a reset.
      s.conn.writeRst(client.id, code === ERROR.NO_ERROR ? ERROR.INTERNAL_ERROR : code);
      client.localClosed = true;
      client.remoteClosed = true;
      client.queue.length = 0;
    }
    s.conn.settle(s);
  }

  protected onStreamWindow(id: number, increment: number): void {
    const s = this.#stream(id);
    if (s === undefined) return;
    this.growStreamWindow(id, s.backend, increment);
    this.send(s);
  }

  protected resume(half: StreamHalf): void {
    const s = this.#streams.get(half.id);
    if (s !== undefined) this.send(s);
  }

  protected onInitialWindow(delta: number): void {
    this.shiftStreamWindows(
      Array.from(this.#streams.values(), (s) => s.backend),
      delta,
    );
    if (delta > 0) for (const s of this.#streams.values()) this.send(s);
  }

  /** The backend's first SETTINGS fix its stream limit; open what waited for it. */
  protected override onSettings(): void {
    this.#settled = true;
    this.#events.limit(Math.min(this.peerMaxStreams, MAX_BACKEND_STREAMS));
    clearTimeout(this.#handshake);
    this.#openWaiting();
    // Streams queued before the limit was known and over it: the pool finds them a connection
    // with room, or opens one (they would otherwise wait for these streams to finish). Those of
    // a removed backend wait here: the pool has no connection for it to give them.
    if (this.#removed) return;
    for (const w of this.#waiting.splice(0)) this.#events.redispatch(w.s, w.fields, w.end);
  }

  protected onGoaway(lastStreamId: number): void {
    // Open for its remaining streams, like a retired one: counted, and closed with the pool (a
    // second GOAWAY, with a lower last stream id, is processed again below).
    if (!this.#retired && !this.#peerGoaway) this.#events.drained(this);
    this.#peerGoaway = true;
    this.#events.gone(this);
    // Streams above `lastStreamId` were not processed (§6.8): they go again on another
    // connection when they can (no body byte sent), as do queued ones; the others fail.
    const again: { s: RelayStream; fields: FieldList; end: boolean }[] = [];
    for (const [id, s] of this.#streams) {
      if (id <= lastStreamId || s.gotResponse) continue;
      if (this.#retryable(s)) {
        again.push({ s, ...this.#rewind(s) });
        continue;
      }
      this.#streams.delete(id);
      s.backendDone = true;
      s.conn.fail(s, 'backend-goaway');
    }
    again.push(...this.#waiting.splice(0));
    for (const w of again) this.#events.redispatch(w.s, w.fields, w.end);
    if (this.#streams.size === 0) this.close();
  }

  protected onTerminate(reason: string): void {
    clearTimeout(this.#handshake);
    this.#events.gone(this);
    this.#events.closed(this);
    const streams = [...this.#streams.values(), ...this.#waiting.map((w) => w.s)];
    this.#streams.clear();
    this.#waiting.length = 0;
    for (const s of streams) {
      if (s.backendDone) continue;
      s.backendDone = true;
      if (!s.gotResponse) s.conn.fail(s, reason);
      else if (!s.client.localClosed && s.client.pendingEnd === false) {
        s.conn.writeRst(s.client.id, ERROR.INTERNAL_ERROR);
        s.client.localClosed = true;
        s.client.remoteClosed = true;
        s.conn.settle(s);
      }
    }
  }
}

/** Backend connections per backend that streams are spread over round-robin. */
const SLOTS = 4;
/** With all of them full (MAX_BACKEND_STREAMS, or the backend's lower limit), up to this many. */
const MAX_SLOTS = 16;
/*
 * Retired connections (RESETS_PER_BACKEND_CONNECTION) stay open until the streams they carry end,
 * outside MAX_SLOTS: a client that pins retired connections with slow requests cannot stop the
 * pool from dialling. They are never closed for age or number, which would reset other clients'
 * long responses on them at a retiring client's will. At most MAX_LINGERING are open per
 * backend: beyond it connections are not retired and keep taking resets (each client's reset
 * budget still bounds its share), so pinning retired connections cannot exhaust descriptors or
 * the backend's connection limit; weighing the requests that pin them against their clients was
 * tried and dropped, since whoever retires a connection would then charge its other clients.
 */
const MAX_LINGERING = 64;

/** Backend connections of one backend. */
interface Backend {
  /** Connections taking new streams (empty slots are dialled on demand). */
  readonly slots: (BackendConnection | undefined)[];
  /** Connections retired after too many resets, still open for their streams (MAX_LINGERING). */
  readonly lingering: Set<BackendConnection>;
  /**
   * Connections the backend sent GOAWAY on, still open for their streams: closed with the pool,
   * not counted in MAX_LINGERING (the backend's own rotation must not switch ours off).
   */
  readonly draining: Set<BackendConnection>;
  /** The stream limit the backend last announced (kept when its connections close). */
  limit: number | undefined;
}

function newBackend(): Backend {
  return {
    slots: Array.from({ length: SLOTS }, (): BackendConnection | undefined => undefined),
    lingering: new Set(),
    draining: new Set(),
    limit: undefined,
  };
}

/** Backend connections of the relay: a few per backend, streams spread round-robin. */
export class RelayPool {
  readonly #backends = new Map<string, Backend>();
  readonly #dial: (target: BackendTarget) => Duplex;
  /** Backends (`backendKey`) the routes name, from the last `retain`; undefined before it: all. */
  #live: ReadonlySet<string> | undefined;
  /** Drained connections of backends no route names, open for their streams: closed with the pool. */
  readonly #removed = new Set<BackendConnection>();
  #next = 0;
  #closed = false;

  constructor(dial: (target: BackendTarget) => Duplex) {
    this.#dial = dial;
  }

  /** Live backend connections of a route's backend that take new streams (tests). */
  connections(route: EdgeRoute): BackendConnection[] {
    const slots = this.#backends.get(this.#key(route))?.slots ?? [];
    return slots.filter((c): c is BackendConnection => c !== undefined);
  }

  /** Retired connections of a route's backend still open (tests). */
  lingering(route: EdgeRoute): number {
    return this.#backends.get(this.#key(route))?.lingering.size ?? 0;
  }

  #key(r: EdgeRoute): string {
    // Keys are per backend, not per route object: a reloaded route keeps its connections.
    return backendKey(r);
  }

  #backend(route: EdgeRoute): Backend {
    const key = this.#key(route);
    let backend = this.#backends.get(key);
    if (backend === undefined) {
      backend = newBackend();
      this.#backends.set(key, backend);
    }
    return backend;
  }

  /**
   * A route swap: drains the connections of backends not in `live` (`backendKey`s of the new
   * table's routes); those of the backends in it serve on.
   */
  retain(live: ReadonlySet<string>): void {
    this.#live = live;
    for (const [key, { slots, lingering, draining }] of this.#backends) {
      if (live.has(key)) continue;
      this.#backends.delete(key);
      for (const c of [...slots, ...lingering, ...draining]) {
        if (c === undefined || c.closed) continue;
        this.#removed.add(c);
        c.drain();
      }
    }
  }

  /**
   * Requests one client may have in flight to a route's backend: a quarter of what a full pool
   * carries (the backend's last announced stream limit times MAX_SLOTS; MAX_BACKEND_STREAMS
   * before it ever answered), at least 8.
   */
  share(route: EdgeRoute): number {
    const limit = this.#backends.get(this.#key(route))?.limit ?? MAX_BACKEND_STREAMS;
    return Math.max(8, Math.floor((limit * MAX_SLOTS) / 4));
  }

  connection(target: BackendTarget): BackendConnection {
    if (this.#live?.has(this.#key(target.route)) === false) {
      // A stream routed before a swap removed its backend and sent again (REFUSED_STREAM, GOAWAY,
      // a retired connection's queue): a connection of its own, drained once it is done.
      const own = this.#create(target, newBackend(), 0);
      this.#removed.add(own);
      own.drain();
      return own;
    }
    const backend = this.#backend(target.route);
    const slots = backend.slots;
    const i = this.#next++ % SLOTS;
    const existing = slots[i];
    if (existing?.usable !== true) return this.#create(target, backend, i);
    if (existing.hasRoom) return existing;
    // Its slots are taken: another connection with room, else a new one up to MAX_SLOTS.
    for (const c of slots) if (c?.usable === true && c.hasRoom) return c;
    let free = slots.findIndex((c, at) => at >= SLOTS && c?.usable !== true);
    if (free < 0 && slots.length < MAX_SLOTS) free = slots.push(undefined) - 1;
    return free < 0 ? existing : this.#create(target, backend, free);
  }

  #create(target: BackendTarget, backend: Backend, i: number): BackendConnection {
    const slots = backend.slots;
    const created: BackendConnection = new BackendConnection(this.#dial(target), target.connectTimeoutMs, {
      redispatch: (s, fields, end) => {
        if (this.#closed) {
          s.conn.fail(s, 'shutting down');
          return;
        }
        // The stream's own target: after a reload it may name another backend.
        const own = s.target ?? target;
        // Requests queued before the backend's stream limit was known are held to the share it
        // gives (a client's burst on a cold pool must not take every stream a small backend has).
        if (s.conn.overShare(this.share(own.route))) {
          s.conn.limited(s);
          return;
        }
        try {
          this.connection(own).open(s, fields, end);
        } catch (error) {
          s.conn.fail(s, error instanceof Error ? error.message : 'dial');
        }
      },
      gone: (c) => {
        if (slots[i] === c) slots[i] = undefined;
      },
      mayRetire: () => backend.lingering.size < MAX_LINGERING,
      retired: (c) => {
        if (!this.#closed) backend.lingering.add(c);
      },
      drained: (c) => {
        if (!this.#closed) backend.draining.add(c);
      },
      closed: (c) => {
        backend.lingering.delete(c);
        backend.draining.delete(c);
        this.#removed.delete(c);
      },
      limit: (streams) => {
        backend.limit = streams;
      },
    });
    slots[i] = created;
    return created;
  }

  close(): void {
    this.#closed = true;
    const open = [...this.#removed];
    for (const { slots, lingering, draining } of this.#backends.values()) {
      open.push(...lingering, ...draining);
      for (const c of slots) if (c !== undefined) open.push(c);
    }
    for (const c of open) {
      c.goaway();
      c.close();
    }
    this.#backends.clear();
  }
}
