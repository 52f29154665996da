import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import {
  type ConnectRouter,
  type ContextValues,
  createConnectRouter,
  createContextKey,
  type HandlerContext,
  type ServiceImpl,
} from '@connectrpc/connect';
import { universalRequestFromNodeRequest, universalResponseToNodeResponse } from '@connectrpc/connect-node';
import type { UniversalServerResponse } from '@connectrpc/connect/protocol';
import type { KvService } from '#gen/gatehouse/kv/v1/kv_pb.ts';
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
  };
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

function fixGrpcHeaders(headers: Headers | undefined): void {
  if (headers?.get('grpc-status') === '13' && CLIENT_FAULT.test(headers.get('grpc-message') ?? '')) {
    headers.set('grpc-status', '3');
  }
}

async function* fixGrpcWebBody(body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  for await (const chunk of body) {
    if (chunk[0] === GRPC_TRAILER_FLAG) {
      // gRPC-Web carries the status in a trailer frame at the end of the body.
      const text = Buffer.from(chunk.subarray(5)).toString('latin1');
      const message = /grpc-message: ([^\r\n]*)/.exec(text)?.[1] ?? '';
      if (/grpc-status: 13\r\n/.test(text) && CLIENT_FAULT.test(message)) {
        const fixed = Buffer.from(text.replace('grpc-status: 13', 'grpc-status: 3'), 'latin1');
        const head = Buffer.alloc(5);
        head.writeUInt8(GRPC_TRAILER_FLAG, 0);
        head.writeUInt32BE(fixed.length, 1);
        yield Buffer.concat([head, fixed]);
        continue;
      }
    }
    yield chunk;
  }
}

async function* single(chunk: Uint8Array): AsyncIterable<Uint8Array> {
  yield chunk;
}

/** Rewrites INTERNAL to INVALID_ARGUMENT where a malformed request caused it, in every protocol. */
async function clientFaults(res: UniversalServerResponse): Promise<UniversalServerResponse> {
  fixGrpcHeaders(res.header);
  fixGrpcHeaders(res.trailer);
  if (res.body === undefined) return res;
  const contentType = res.header?.get('content-type') ?? '';
  if (contentType.startsWith('application/grpc-web')) {
    res.header?.delete('content-length');
    return { ...res, body: fixGrpcWebBody(res.body) };
  }
  if (res.status !== 500 || !contentType.startsWith('application/json')) return res;
  // A Connect-protocol error: {"code":"internal","message":"parse binary: …"}; it is small, and
  // the HTTP status depends on it, so it is read first.
  const chunks: Uint8Array[] = [];
  for await (const chunk of res.body) chunks.push(chunk);
  const original = Buffer.concat(chunks);
  let error: { code?: unknown; message?: unknown } = {};
  try {
    error = JSON.parse(original.toString('utf8')) as typeof error;
  } catch {
    return { ...res, body: single(original) };
  }
  if (error.code !== 'internal' || typeof error.message !== 'string' || !CLIENT_FAULT.test(error.message)) {
    return { ...res, body: single(original) };
  }
  const fixed = Buffer.from(JSON.stringify({ code: 'invalid_argument', message: error.message }));
  res.header?.set('content-length', String(fixed.length));
  return { ...res, status: 400, body: single(fixed) };
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
}): (req: Http2ServerRequest, res: Http2ServerResponse) => void {
  const router = createConnectRouter({
    readMaxBytes: options.readMaxBytes,
    // A field the API does not have is a client mistake (or a probe), not something to ignore.
    jsonOptions: { ignoreUnknownFields: false },
    // Values are opaque bytes, often already compressed; gzip per message costs CPU on both
    // ends for little gain on the data path, and no compressed body means no decompression bomb.
    acceptCompression: [],
  });
  options.routes(router);
  const paths = new Map(router.handlers.map((h) => [h.requestPath, h]));
  return (req, res) => {
    const handler = paths.get(req.url.split('?', 2)[0] ?? '');
    if (handler === undefined) {
      res.writeHead(404);
      res.end();
      return;
    }
    const request = universalRequestFromNodeRequest(req, res, undefined, options.contextValues(req));
    handler(request)
      .then(async (response) => universalResponseToNodeResponse(await clientFaults(response), res))
      // A client that went away mid-answer is not an error of the door.
      .catch(() => undefined);
  };
}
