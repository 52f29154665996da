/**
 * A real @grpc/grpc-js server (h2c) and client for the L7 tests. Messages are raw bytes, so the
 * service needs no generated code; the four RPC kinds are all here.
 */
import * as grpc from '@grpc/grpc-js';

const identity = (b: Buffer) => b;
const method = (name: string, requestStream: boolean, responseStream: boolean) => ({
  path: `/edge.test.Echo/${name}`,
  requestStream,
  responseStream,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity,
});

export const ECHO_SERVICE = {
  unary: method('Unary', false, false),
  serverStream: method('ServerStream', false, true),
  clientStream: method('ClientStream', true, false),
  bidi: method('Bidi', true, true),
} as const;

export interface GrpcBackend extends AsyncDisposable {
  readonly address: string;
  /** Calls the server saw cancelled (deadline propagation reaches the backend). */
  readonly cancelled: string[];
}

/** Unary echoes (or sleeps when the request says `slow`), streams count, trailers carry a tag. */
export async function startGrpcBackend(): Promise<GrpcBackend> {
  const cancelled: string[] = [];
  const server = new grpc.Server({
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
  });
  const trailer = () => {
    const m = new grpc.Metadata();
    m.set('x-edge-trailer', 'present');
    return m;
  };
  server.addService(ECHO_SERVICE, {
    unary(call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) {
      if (call.request.toString() === 'slow') {
        call.on('cancelled', () => cancelled.push('unary'));
        return;
      }
      if (call.request.toString() === 'fail') {
        cb({ code: grpc.status.FAILED_PRECONDITION, details: 'asked to fail', metadata: trailer() });
        return;
      }
      cb(null, call.request, trailer());
    },
    serverStream(call: grpc.ServerWritableStream<Buffer, Buffer>) {
      const n = Number(call.request.toString());
      for (let i = 0; i < n; i++) call.write(Buffer.from(`item-${i}`));
      call.end(trailer());
    },
    clientStream(call: grpc.ServerReadableStream<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) {
      let count = 0;
      let bytes = 0;
      call.on('data', (b: Buffer) => {
        count++;
        bytes += b.length;
      });
      call.on('end', () => cb(null, Buffer.from(`${count}:${bytes}`), trailer()));
    },
    bidi(call: grpc.ServerDuplexStream<Buffer, Buffer>) {
      call.on('data', (b: Buffer) => call.write(Buffer.from(`echo:${b.toString()}`)));
      call.on('end', () => call.end(trailer()));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  return {
    address: `127.0.0.1:${port}`,
    cancelled,
    async [Symbol.asyncDispose]() {
      server.forceShutdown();
    },
  };
}

/** A client that reaches `serverName` through the edge at 127.0.0.1:`port`, trusting `ca`. */
export function grpcClient(port: number, serverName: string, ca: Buffer) {
  const Client = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo');
  return new Client(`127.0.0.1:${port}`, grpc.credentials.createSsl(ca), {
    'grpc.ssl_target_name_override': serverName,
    'grpc.default_authority': serverName,
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
  }) as unknown as Record<keyof typeof ECHO_SERVICE, (...args: unknown[]) => unknown> & grpc.Client;
}
