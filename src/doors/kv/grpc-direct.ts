import {
  constants,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import { type DescMessage, type DescService, fromBinary } from '@bufbuild/protobuf';
import { ConnectError } from '@connectrpc/connect';
import { GatewayError } from '#core/errors';
import type { Logger } from '#core/log';
import { toConnectError } from './errors.ts';
import { FRAME_HEAD, type MessageEncoder, messageEncoder } from './codec.ts';
import type { CallPeer, KvCallContext } from './guard.ts';
import type { KvMethods } from './service.ts';

/** The client's own deadline: answered by status alone (no error of the door's to log). */
const DEADLINE_EXCEEDED = 4;

/** A refusal before the call reaches a method; it gets a stable code and an errorId. */
const malformed = (message: string) => new GatewayError('GW_ERR_KV_MESSAGE_MALFORMED', { message });
const unimplemented = (message: string, headers: Record<string, string> = {}) =>
  new GatewayError('GW_ERR_KV_UNIMPLEMENTED', { message, headers });

/** The content types of the gRPC protocol with protobuf messages; gRPC+JSON stays with Connect. */
// Parameters (`; charset=utf-8`, sent by some clients) do not change the protocol.
const GRPC_PROTO = /^application\/grpc(\+proto)?[ \t]*(;.*)?$/i;
const TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 1e-3,
  n: 1e-6,
};
const FLAG_COMPRESSED = 0x01;

// Abort reasons, built once: they only become the `cause` of the driver's UNAVAILABLE error.
const CANCELLED = new Error('The client cancelled the call');
const DRIVER_DEADLINE = new Error('The driver deadline passed');
const CLIENT_DEADLINE = new Error('The client deadline passed');

/**
 * `grpc-message` as the gRPC protocol encodes it: UTF-8, with every byte outside printable ASCII
 * and `%` itself percent-encoded (clients decode only that; `encodeURIComponent` would also
 * encode `:` or `/`, which some clients then show as `%3A`).
 */
export function encodeGrpcMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The longest delay a Node timer holds; a deadline beyond it counts as none. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The client's `grpc-timeout` in milliseconds; undefined without one, NaN when malformed. */
export function parseGrpcTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const match = TIMEOUT.exec(value);
  if (match === null) return Number.NaN;
  return Number(match[1]) * (TIMEOUT_UNIT_MS[match[2] ?? ''] ?? Number.NaN);
}

interface Route {
  readonly input: DescMessage;
  readonly output: MessageEncoder<DescMessage>;
  readonly run: (message: never, ctx: KvCallContext) => Promise<unknown>;
}

export interface GrpcDirectOptions {
  readonly service: DescService;
  readonly methods: KvMethods;
  readonly log: Logger;
}

/**
 * Serves the unary kv methods over the gRPC protocol (protobuf messages) straight on a
 * node:http2 stream: one length-prefixed message in, one `respond`, one DATA frame and the
 * trailers out (an error is a trailers-only answer). The methods are the same functions the
 * Connect handler calls, so authentication, authorization, validation, limits, metrics, audit
 * and error mapping are the same; this path only saves the generic RPC pipeline per call.
 * Returns false for a stream it does not serve (another content type or HTTP method), which
 * then goes to the Connect handler (Connect, gRPC-Web, gRPC+JSON).
 */
export function createGrpcDirect(options: GrpcDirectOptions) {
  const routes = new Map<string, Route>();
  for (const method of options.service.methods) {
    if (method.methodKind !== 'unary') continue;
    const run = (options.methods as unknown as Record<string, Route['run'] | undefined>)[method.localName];
    if (run === undefined) throw new TypeError(`The kv method "${method.name}" has no implementation`);
    routes.set(`/${options.service.typeName}/${method.name}`, {
      input: method.input,
      output: messageEncoder(method.output),
      run,
    });
  }
  /** `maxBytes`: the largest request message; a longer one gets RESOURCE_EXHAUSTED unread. */
  return (
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    peer: CallPeer,
    maxBytes: number,
  ): boolean => {
    const contentType = headers['content-type'];
    if (headers[':method'] !== 'POST' || contentType === undefined || !GRPC_PROTO.test(contentType)) {
      return false;
    }
    const mediaType = (contentType.split(';', 1)[0] ?? '').trim().toLowerCase();
    const call = new DirectCall(stream, headers, mediaType, peer, maxBytes, options);
    const route = routes.get(headers[':path'] ?? '');
    if (route === undefined) {
      call.refuse(unimplemented('Unknown method'));
      return true;
    }
    const encoding = call.get('grpc-encoding');
    if (encoding !== null && encoding !== 'identity') {
      call.refuse(
        unimplemented(`Message encoding "${encoding.slice(0, 32)}" is not supported`, {
          'grpc-accept-encoding': 'identity',
        }),
      );
      return true;
    }
    const timeoutMs = parseGrpcTimeout(call.get('grpc-timeout') ?? undefined);
    if (Number.isNaN(timeoutMs)) {
      call.refuse(malformed('Malformed grpc-timeout header'));
      return true;
    }
    call.start(route, timeoutMs);
    return true;
  };
}

/** One call on the direct path; it is also the call's KvCallContext. */
class DirectCall implements KvCallContext {
  readonly requestHeader = this;
  readonly responseHeader = this;
  readonly within: (ms: number) => AbortSignal;
  private route: Route | undefined;
  private answered = false;
  private chunks: Buffer[] = [];
  private received = 0;
  /** Length of the message from its prefix, -1 until five bytes arrived. */
  private length = -1;
  private controller: AbortController | undefined;
  private driverTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private deadlineAt = Number.POSITIVE_INFINITY;
  private endedBy: 'deadline' | 'cancelled' | undefined;
  private answerHeaders: OutgoingHttpHeaders | undefined;
  private readonly stream: ServerHttp2Stream;
  private readonly headers: IncomingHttpHeaders;
  private readonly contentType: string;
  private readonly options: GrpcDirectOptions;
  private readonly maxBytes: number;
  readonly peer: CallPeer;

  constructor(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    contentType: string,
    peer: CallPeer,
    maxBytes: number,
    options: GrpcDirectOptions,
  ) {
    this.stream = stream;
    this.headers = headers;
    this.contentType = contentType;
    this.peer = peer;
    this.maxBytes = maxBytes;
    this.options = options;
    this.within = (ms) => this.arm(ms);
    this.ended = () => this.endedBy;
  }

  /** KvCallContext.ended. */
  readonly ended: () => 'deadline' | 'cancelled' | undefined;

  /** KvCallContext.requestHeader. */
  get(name: string): string | null {
    const value = this.headers[name];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(', ') : value;
  }

  /** KvCallContext.responseHeader. */
  set(name: string, value: string): void {
    (this.answerHeaders ??= {})[name] = value;
  }

  start(route: Route, timeoutMs: number | undefined): void {
    this.route = route;
    const { stream } = this;
    // 99999999H is a valid header; Node would fire a timer of more than 2^31-1 ms after 1 ms.
    if (timeoutMs !== undefined && timeoutMs <= MAX_TIMER_MS) {
      this.deadlineAt = Date.now() + timeoutMs;
      this.deadlineTimer = setTimeout(() => this.onDeadline(), timeoutMs);
    }
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('end', () => this.onEnd());
    // A client that resets the stream or goes away: stop the backend call, answer nothing.
    stream.on('close', () => {
      if (this.finish(CANCELLED)) this.endedBy ??= 'cancelled';
    });
    stream.on('error', () => undefined);
  }

  /** A trailers-only answer before the call reached a method. */
  refuse(error: GatewayError): void {
    this.stream.on('error', () => undefined);
    this.answerRefusal(error);
  }

  private arm(ms: number): AbortSignal {
    const controller = (this.controller ??= new AbortController());
    // The call already ended (its deadline passed, the client cancelled or it was refused) while
    // it authenticated, before any backend call had a signal to abort: this one starts aborted.
    // Otherwise it would run to the driver deadline, or with none at all once the client's
    // deadline has passed, holding its in-flight slot.
    if (this.answered) {
      if (!controller.signal.aborted)
        controller.abort(this.endedBy === 'deadline' ? CLIENT_DEADLINE : CANCELLED);
      return controller.signal;
    }
    if (this.driverTimer !== undefined) clearTimeout(this.driverTimer);
    this.driverTimer = undefined;
    // When the client's deadline comes first, its own timer aborts the backend call and answers
    // DEADLINE_EXCEEDED; a driver timer for the same instant could win and answer UNAVAILABLE.
    if (ms < this.deadlineAt - Date.now()) {
      this.driverTimer = setTimeout(() => controller.abort(DRIVER_DEADLINE), ms);
    }
    return controller.signal;
  }

  private onData(chunk: Buffer): void {
    if (this.answered) return;
    this.received += chunk.length;
    this.chunks.push(chunk);
    if (this.length < 0 && this.received >= FRAME_HEAD) {
      const head = this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks);
      const flags = head[0] ?? 0;
      this.length = head.readUInt32BE(1);
      if (this.length > this.maxBytes) {
        // The same stable code as a value or batch over the payload cap, so clients (and the
        // batcher, which then sends the calls one by one) can tell it from a rate limit.
        this.fail(
          new GatewayError('GW_ERR_KV_PAYLOAD_TOO_LARGE', {
            message: `Message of ${this.length} bytes exceeds the limit of ${this.maxBytes} bytes`,
            details: { limit: this.maxBytes },
          }),
        );
        return;
      }
      if (flags === FLAG_COMPRESSED) {
        this.fail(malformed('Compressed message without a grpc-encoding'));
        return;
      }
      if (flags !== 0) {
        this.fail(malformed(`Message frame has unknown flags ${flags}`));
        return;
      }
    }
    if (this.length >= 0 && this.received > FRAME_HEAD + this.length) {
      this.fail(malformed('More than one message for a unary method'));
    }
  }

  private onEnd(): void {
    if (this.answered) return;
    const route = this.route;
    if (route === undefined || this.length < 0 || this.received < FRAME_HEAD + this.length) {
      this.fail(malformed('Missing or truncated request message'));
      return;
    }
    const whole = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    this.chunks = [];
    let message: unknown;
    try {
      message = fromBinary(route.input, whole.subarray(FRAME_HEAD, FRAME_HEAD + this.length));
    } catch {
      this.fail(malformed('Request message is not a valid protobuf message'));
      return;
    }
    route.run(message as never, this).then(
      (out) => this.answerMessage(route, out),
      (error: unknown) => this.answerThrown(error),
    );
  }

  private onDeadline(): void {
    this.deadlineTimer = undefined;
    this.endedBy ??= 'deadline';
    this.controller?.abort(CLIENT_DEADLINE);
    if (this.finish(CLIENT_DEADLINE)) this.answerError(DEADLINE_EXCEEDED, 'Deadline exceeded', {});
  }

  /** Ends the call's timers and its backend signal; true the first time only. */
  private finish(reason: Error | undefined): boolean {
    if (this.answered) return false;
    this.answered = true;
    this.chunks = [];
    if (this.driverTimer !== undefined) clearTimeout(this.driverTimer);
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer);
    if (reason !== undefined) this.controller?.abort(reason);
    return true;
  }

  /** A refusal while the request arrives: the backend call (if any) stops, the client is told. */
  private fail(error: GatewayError): void {
    if (this.finish(CANCELLED)) this.answerRefusal(error);
  }

  /** A refusal of the door's own, with its code and errorId (logged). */
  private answerRefusal(error: GatewayError): void {
    this.answerConnectError(toConnectError(error, this.options.log).error);
  }

  private answerMessage(route: Route, out: unknown): void {
    if (!this.finish(undefined)) return;
    let frame: Buffer;
    try {
      frame = route.output.frame(out as never);
    } catch (error) {
      this.answerConnectError(toConnectError(error, this.options.log).error);
      return;
    }
    const { stream } = this;
    if (stream.destroyed || stream.closed) return;
    stream.respond(
      { ':status': 200, 'content-type': this.contentType, ...this.answerHeaders },
      { waitForTrailers: true },
    );
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(frame);
  }

  private answerThrown(error: unknown): void {
    if (!this.finish(undefined)) return;
    // The guard maps every failure of a method to a ConnectError (status, safe message, code
    // and errorId); anything else is mapped here the same way.
    this.answerConnectError(
      error instanceof ConnectError ? error : toConnectError(error, this.options.log).error,
    );
  }

  private answerConnectError(error: ConnectError): void {
    const extra: OutgoingHttpHeaders = {};
    for (const [name, value] of error.metadata) extra[name] = value;
    this.answerError(error.code, error.rawMessage, extra);
  }

  /** A trailers-only answer: HTTP 200 with the status in the one HEADERS frame. */
  private answerError(code: number, message: string, extra: OutgoingHttpHeaders): void {
    const { stream } = this;
    if (stream.destroyed || stream.closed) return;
    stream.respond(
      {
        ...extra,
        ':status': 200,
        'content-type': this.contentType,
        'grpc-status': String(code),
        'grpc-message': encodeGrpcMessage(message),
      },
      { endStream: true },
    );
    // The client may still be sending (an oversized message, a refusal before the body): a
    // RST_STREAM NO_ERROR after the answer tells it to stop (RFC 9113, section 8.1). The
    // listener then makes the session prove it is alive (server.ts, probe).
    if (!stream.readableEnded) stream.close(constants.NGHTTP2_NO_ERROR);
  }
}
