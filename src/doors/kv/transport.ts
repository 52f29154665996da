import { constants, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import type { JsonReadOptions } from '@bufbuild/protobuf';
import {
  Code,
  ConnectError,
  type ConnectRouter,
  type ContextValues,
  createConnectRouter,
  createContextKey,
  type HandlerContext,
  type ServiceImpl,
} from '@connectrpc/connect';
import { universalRequestFromNodeRequest, universalResponseToNodeResponse } from '@connectrpc/connect-node';
import type { UniversalServerRequest, UniversalServerResponse } from '@connectrpc/connect/protocol';
import { codeFromString } from '@connectrpc/connect/protocol-connect';
import { GatewayError } from '#core/errors';
import type { Logger } from '#core/log';
import type { KvService } from '#gen/gatehouse/kv/v1/kv_pb.ts';
import { ERROR_CODE_HEADER, toConnectError } from './errors.ts';
import { MAX_TIMER_MS, parseGrpcTimeout } from './grpc-direct.ts';
import type { CallPeer, KvCallContext } from './guard.ts';
import type { KvMethods } from './service.ts';

/** Set by the listener for every request that goes through Connect (`contextValues`). */
export const PEER = createContextKey<CallPeer>({ clientIp: '' }, { description: 'kv caller' });

function callContextOf(ctx: HandlerContext): KvCallContext {
  return {
    peer: ctx.values.get(PEER),
    requestHeader: ctx.requestHeader,
    responseHeader: ctx.responseHeader,
    // Connect aborts ctx.signal when the client cancels or its deadline passes.
    within: (ms) => AbortSignal.any([ctx.signal, AbortSignal.timeout(ms)]),
    ended: () => {
      if (!ctx.signal.aborted) return undefined;
      return ConnectError.from(ctx.signal.reason).code === Code.DeadlineExceeded ? 'deadline' : 'cancelled';
    },
  };
}

/**
 * Base64 takes 4 characters for 3 bytes. The message cap through ConnectRPC is the base64 length
 * of the protobuf cap (JSON carries bytes as base64), and a gRPC-Web text body holds a message of
 * that cap in base64 again.
 */
export const base64Length = (bytes: number): number => 4 * Math.ceil(bytes / 3);

/** gRPC-Web's text mode (the default of the grpc-web JavaScript client): frames in base64. */
const GRPC_WEB_TEXT = /^application\/grpc-web-text(\+proto)?(;|$)/;

/**
 * Serves a gRPC-Web text request through ConnectRPC, which speaks only the binary mode: the body
 * is read whole (at most `maxBytes` of base64), decoded and handed on as `application/grpc-web+proto`;
 * the answer (one message and its trailer frame) goes back as one base64 body of the text type.
 * Base64 that does not decode is a malformed message; a body above the cap is refused as soon as
 * it passes it, as ConnectRPC refuses a binary message above `readMaxBytes`.
 */
async function fromGrpcWebText(
  request: UniversalServerRequest,
  maxBytes: number,
): Promise<UniversalServerRequest | 'malformed' | 'too-large'> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    if (size > maxBytes) return 'too-large';
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('latin1').replace(/\s+/g, '');
  // The client may send several base64 pieces, each padded: decode them one by one.
  const pieces = text.split(/(?<==)(?=[^=])/);
  if (!pieces.every((piece) => /^[A-Za-z0-9+/]*={0,2}$/.test(piece) && piece.length % 4 === 0))
    return 'malformed';
  const body = Buffer.concat(pieces.map((piece) => Buffer.from(piece, 'base64')));
  const header = new Headers(request.header);
  header.set('content-type', 'application/grpc-web+proto');
  header.delete('content-length');
  return { ...request, header, body: single(body) };
}

async function toGrpcWebText(response: UniversalServerResponse): Promise<UniversalServerResponse> {
  const header = new Headers(response.header);
  header.set('content-type', 'application/grpc-web-text+proto');
  header.delete('content-length');
  if (response.body === undefined) return { ...response, header };
  const chunks: Uint8Array[] = [];
  for await (const chunk of response.body) chunks.push(chunk);
  return {
    ...response,
    header,
    body: single(Buffer.from(Buffer.concat(chunks).toString('base64'), 'latin1')),
  };
}

/**
 * A field the API does not have is a client mistake (or a probe), not something to ignore; and
 * invalid UTF-8 is refused (a lenient decoder would store U+FFFD: another key than was sent).
 * ConnectRPC passes these to its JSON serialization, whose options also take the decoder.
 */
const JSON_OPTIONS: Partial<JsonReadOptions> & {
  readonly textDecoder: { decode(input: Uint8Array): string };
} = {
  ignoreUnknownFields: false,
  textDecoder: new TextDecoder('utf-8', { fatal: true }),
};

/**
 * Deadline headers above what a timer holds (2^31-1 ms, about 24.8 days) are removed, so the call
 * has no deadline: ConnectRPC would arm a timer that Node fires after 1 ms instead.
 */
function dropUnboundedDeadline(req: Http2ServerRequest): void {
  const grpc = req.headers['grpc-timeout'];
  if (typeof grpc === 'string' && (parseGrpcTimeout(grpc) ?? 0) > MAX_TIMER_MS)
    delete req.headers['grpc-timeout'];
  const connect = req.headers['connect-timeout-ms'];
  if (typeof connect === 'string' && Number(connect) > MAX_TIMER_MS) delete req.headers['connect-timeout-ms'];
}

/** The kv methods as a Connect service implementation (Connect, gRPC-Web, gRPC with JSON). */
export function connectServiceOf(methods: KvMethods): ServiceImpl<typeof KvService> {
  const impl: Record<string, (message: never, ctx: HandlerContext) => Promise<unknown>> = {};
  for (const [name, run] of Object.entries(methods) as [
    string,
    (m: never, c: KvCallContext) => Promise<unknown>,
  ][]) {
    impl[name] = (message, ctx) => run(message, callContextOf(ctx));
  }
  return impl as unknown as ServiceImpl<typeof KvService>;
}

// ConnectRPC reports these decode failures as INTERNAL; they are the client's fault.
const CLIENT_FAULT = /^(parse(%20| )binary|received(%20| )compressed(%20| )envelope)/;
const GRPC_TRAILER_FLAG = 0x80;

/**
 * The codes of the refusals ConnectRPC makes before a method runs (a body it cannot decode, one
 * above `readMaxBytes`, a compression it does not accept), by gRPC status: the same codes the
 * direct gRPC path gives. The methods' own errors already carry theirs.
 */
const REFUSALS = new Map<
  number,
  'GW_ERR_KV_MESSAGE_MALFORMED' | 'GW_ERR_KV_PAYLOAD_TOO_LARGE' | 'GW_ERR_KV_UNIMPLEMENTED'
>([
  [Code.InvalidArgument, 'GW_ERR_KV_MESSAGE_MALFORMED'],
  [Code.ResourceExhausted, 'GW_ERR_KV_PAYLOAD_TOO_LARGE'],
  [Code.Unimplemented, 'GW_ERR_KV_UNIMPLEMENTED'],
]);

/**
 * HTTP statuses ConnectRPC answers without any protocol's error body: a content type none of its
 * protocols speaks (415), a GET on a method that is not side-effect free or without the
 * Connect GET parameters (405). Both are requests the door does not implement.
 */
const HTTP_REFUSALS = new Map<number, string>([
  [405, 'HTTP method not allowed for this method'],
  [415, 'Unsupported content type'],
]);

/** The code and errorId headers of a refusal with this gRPC status; none for other statuses. */
type Stamp = (status: number, message: string) => Headers | undefined;

function stamper(log: Logger): Stamp {
  return (status, message) => {
    const code = REFUSALS.get(status);
    if (code === undefined) return undefined;
    return toConnectError(new GatewayError(code, { message }), log).error.metadata;
  };
}

/** The error code a `grpc-status` value carries; undefined for OK (0) or none. */
const wireCode = (value: string | null | undefined): number | undefined => {
  const n = Number(value ?? '0');
  return n === 0 || !Number.isInteger(n) ? undefined : n;
};
// The statuses rewritten on the wire, as the numbers the wire carries.
const INTERNAL: number = Code.Internal;
const INVALID_ARGUMENT: number = Code.InvalidArgument;

/** A percent-encoded grpc-message as text; as sent when it does not decode. */
function grpcMessage(encoded: string): string {
  try {
    return decodeURIComponent(encoded);
  } catch {
    return encoded;
  }
}

/** gRPC (JSON messages): the status in the headers (trailers-only) or in the trailers. */
function fixGrpcHeaders(headers: Headers | undefined, stamp: Stamp): void {
  const status = wireCode(headers?.get('grpc-status'));
  if (headers === undefined || status === undefined || headers.has(ERROR_CODE_HEADER)) return;
  const message = headers.get('grpc-message') ?? '';
  const fault = status === INTERNAL && CLIENT_FAULT.test(message);
  if (fault) headers.set('grpc-status', String(INVALID_ARGUMENT));
  for (const [k, v] of stamp(fault ? INVALID_ARGUMENT : status, grpcMessage(message)) ?? []) {
    headers.set(k, v);
  }
}

/** A gRPC-Web trailer frame. */
function trailerFrame(text: string): Buffer {
  const body = Buffer.from(text, 'latin1');
  const head = Buffer.alloc(5);
  head.writeUInt8(GRPC_TRAILER_FLAG, 0);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

async function* fixGrpcWebBody(body: AsyncIterable<Uint8Array>, stamp: Stamp): AsyncIterable<Uint8Array> {
  for await (const chunk of body) {
    if (chunk[0] !== GRPC_TRAILER_FLAG) {
      yield chunk;
      continue;
    }
    // gRPC-Web carries the status in a trailer frame at the end of the body; a success, or an
    // error that already has its code, passes unchanged.
    const original = Buffer.from(chunk.subarray(5)).toString('latin1');
    const status = wireCode(/grpc-status: (\d+)/.exec(original)?.[1]);
    if (status === undefined || /gatehouse-error-code:/i.test(original)) {
      yield chunk;
      continue;
    }
    const message = /grpc-message: ([^\r\n]*)/.exec(original)?.[1] ?? '';
    const fault = status === INTERNAL && CLIENT_FAULT.test(message);
    let text = fault ? original.replace('grpc-status: 13', 'grpc-status: 3') : original;
    for (const [k, v] of stamp(fault ? INVALID_ARGUMENT : status, grpcMessage(message)) ?? []) {
      text += `${k}: ${v}\r\n`;
    }
    yield text === original ? chunk : trailerFrame(text);
  }
}

async function* single(chunk: Uint8Array): AsyncIterable<Uint8Array> {
  yield chunk;
}

/**
 * Refusals ConnectRPC answers itself, in every protocol: INTERNAL becomes INVALID_ARGUMENT where
 * a malformed request caused it, and each refusal before a method gets the door's stable code
 * and an errorId (logged).
 */
async function clientFaults(res: UniversalServerResponse, stamp: Stamp): Promise<UniversalServerResponse> {
  fixGrpcHeaders(res.header, stamp);
  fixGrpcHeaders(res.trailer, stamp);
  const refusal = HTTP_REFUSALS.get(res.status);
  if (refusal !== undefined && res.header?.has(ERROR_CODE_HEADER) !== true) {
    // Answered by ConnectRPC with an HTTP status and no error body (no protocol it speaks
    // matched the request): the code and errorId go in the headers, as on the 404 path.
    const header = new Headers(res.header);
    for (const [k, v] of stamp(Code.Unimplemented, refusal) ?? []) header.set(k, v);
    return { ...res, header };
  }
  if (res.body === undefined) return res;
  const contentType = res.header?.get('content-type') ?? '';
  if (contentType.startsWith('application/grpc-web')) {
    res.header?.delete('content-length');
    return { ...res, body: fixGrpcWebBody(res.body, stamp) };
  }
  if (
    res.status === 200 ||
    !contentType.startsWith('application/json') ||
    res.header?.has(ERROR_CODE_HEADER)
  ) {
    return res;
  }
  // A Connect-protocol error, {"code":"internal","message":"parse binary: …"}: small, and the
  // HTTP status depends on it, so it is read first.
  const chunks: Uint8Array[] = [];
  for await (const chunk of res.body) chunks.push(chunk);
  const original = Buffer.concat(chunks);
  let error: { code?: unknown; message?: unknown } = {};
  try {
    error = JSON.parse(original.toString('utf8')) as typeof error;
  } catch {
    return { ...res, body: single(original) };
  }
  const message = typeof error.message === 'string' ? error.message : '';
  let status = typeof error.code === 'string' ? codeFromString(error.code) : undefined;
  let out = { ...res, body: single(original) };
  if (status === Code.Internal && CLIENT_FAULT.test(message)) {
    const fixed = Buffer.from(JSON.stringify({ code: 'invalid_argument', message }));
    res.header?.set('content-length', String(fixed.length));
    status = Code.InvalidArgument;
    out = { ...res, status: 400, body: single(fixed) };
  }
  for (const [k, v] of (status === undefined ? undefined : stamp(status, message)) ?? [])
    res.header?.set(k, v);
  return out;
}

/**
 * The Node request handler of the kv listener: ConnectRPC's router (gRPC, gRPC-Web and Connect on
 * one path space) with its decode-failure statuses corrected to INVALID_ARGUMENT. It is
 * `connectNodeAdapter` with that one step added.
 */
export function createKvHandler(options: {
  readonly routes: (router: ConnectRouter) => void;
  readonly readMaxBytes: number;
  readonly contextValues: (req: Http2ServerRequest) => ContextValues;
  readonly log: Logger;
}): (req: Http2ServerRequest, res: Http2ServerResponse) => void {
  const stamp = stamper(options.log);
  const router = createConnectRouter({
    readMaxBytes: options.readMaxBytes,
    jsonOptions: JSON_OPTIONS,
    // Values are opaque bytes, often already compressed; gzip per message costs CPU on both
    // ends for little gain on the data path, and no compressed body means no decompression bomb.
    acceptCompression: [],
  });
  options.routes(router);
  const paths = new Map(router.handlers.map((h) => [h.requestPath, h]));
  return (req, res) => {
    const handler = paths.get(req.url.split('?', 2)[0] ?? '');
    if (handler === undefined) {
      // No method at this path (the direct gRPC path answers gRPC+proto itself): a plain 404
      // with the same code and id as every other refusal.
      res.writeHead(404, Object.fromEntries(stamp(12, 'Unknown method') ?? []));
      res.end();
      return;
    }
    dropUnboundedDeadline(req);
    // Answered before the whole request arrived (a refusal, such as a message over the cap):
    // the client is told to stop sending (RST_STREAM NO_ERROR, RFC 9113 section 8.1), as on the
    // direct gRPC path. ConnectRPC stops reading such a request, so left open its upload would
    // stall on flow control until the idle timeout, holding its bytes. The stream's 'finish'
    // means the answer is out (the response's own 'finish' only comes when the stream closes).
    req.stream.once('finish', () => {
      // gRPC answers end with trailers, sent after 'finish': reset once END_STREAM is out (bounded).
      let tries = 0;
      const stop = () => {
        const { stream } = req;
        if (req.complete || stream.closed) return;
        if (stream.state.localClose === 1 || ++tries > 100) stream.close(constants.NGHTTP2_NO_ERROR);
        else setTimeout(stop, 10).unref();
      };
      setImmediate(stop);
    });
    const request = universalRequestFromNodeRequest(req, res, undefined, options.contextValues(req));
    const text = GRPC_WEB_TEXT.test(req.headers['content-type'] ?? '');
    const maxText = base64Length(options.readMaxBytes) + 4;
    const decoded = text ? fromGrpcWebText(request, maxText) : Promise.resolve(request);
    const refuse = (status: Code, message: string): void => {
      res.writeHead(200, {
        ...Object.fromEntries(stamp(status, message) ?? []),
        'content-type': 'application/grpc-web-text+proto',
        'grpc-status': String(status),
        'grpc-message': encodeURIComponent(message),
      });
      res.end();
    };
    const answer = async (binary: UniversalServerRequest | 'malformed' | 'too-large'): Promise<void> => {
      if (binary === 'malformed') refuse(Code.InvalidArgument, 'Malformed gRPC-Web text body');
      else if (binary === 'too-large')
        refuse(Code.ResourceExhausted, `gRPC-Web text body larger than ${maxText} bytes`);
      else {
        const response = await clientFaults(await handler(binary), stamp);
        await universalResponseToNodeResponse(text ? await toGrpcWebText(response) : response, res);
      }
    };
    decoded
      .then(answer)
      // A client that went away mid-answer is not an error of the door.
      .catch(() => undefined);
  };
}
