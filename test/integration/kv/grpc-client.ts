import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const PROTO = join(dirname(fileURLToPath(import.meta.url)), '../../../proto/gatehouse/kv/v1/kv.proto');

export const METHODS = [
  'Get',
  'Set',
  'Delete',
  'Exists',
  'BatchGet',
  'BatchSet',
  'Expire',
  'GetTTL',
  'Persist',
  'List',
] as const;
export type Method = (typeof METHODS)[number];

/** A valid request of each method for namespace `ns`, to probe authentication and authorization. */
export function sampleRequest(method: Method, ns: string): Record<string, unknown> {
  const key = 'probe';
  switch (method) {
    case 'Set':
      return { namespace: ns, key, value: Buffer.from('v') };
    case 'BatchGet':
      return { namespace: ns, keys: [key] };
    case 'BatchSet':
      return { namespace: ns, items: [{ key, value: Buffer.from('v') }] };
    case 'Expire':
      return { namespace: ns, key, ttlSeconds: 60 };
    case 'List':
      return { namespace: ns, prefix: '' };
    default:
      return { namespace: ns, key };
  }
}

export interface GrpcError extends Error {
  readonly code: number;
  readonly details: string;
  readonly metadata: grpc.Metadata;
}

/**
 * An independent gRPC client (@grpc/grpc-js with the .proto loaded at run time by
 * @grpc/proto-loader): it shares no code with the server, so it checks the wire contract.
 */
export function grpcClient(url: string, ca: string, identity?: { cert: string; key: string }) {
  const definition = protoLoader.loadSync(PROTO, { longs: String, defaults: true, enums: String });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    gatehouse: { kv: { v1: { KvService: grpc.ServiceClientConstructor } } };
  };
  const credentials = grpc.credentials.createSsl(
    Buffer.from(ca),
    identity === undefined ? null : Buffer.from(identity.key),
    identity === undefined ? null : Buffer.from(identity.cert),
  );
  const client = new pkg.gatehouse.kv.v1.KvService(new URL(url).host, credentials);
  const call = <T = Record<string, unknown>>(
    method: Method,
    request: Record<string, unknown>,
    auth: Record<string, string> = {},
  ): Promise<T & { readonly headers: grpc.Metadata }> =>
    new Promise((resolve, reject) => {
      const metadata = new grpc.Metadata();
      for (const [k, v] of Object.entries(auth)) metadata.set(k, v);
      let headers = new grpc.Metadata();
      const fn = client[method] as (
        req: unknown,
        md: grpc.Metadata,
        options: grpc.CallOptions,
        cb: (err: GrpcError | null, res: T) => void,
      ) => grpc.ClientUnaryCall;
      const pending = fn.call(client, request, metadata, { deadline: Date.now() + 15_000 }, (err, res) => {
        if (err !== null) reject(err);
        else resolve({ ...res, headers });
      });
      pending.on('metadata', (md: grpc.Metadata) => {
        headers = md;
      });
    });
  return { call, close: () => client.close() };
}

/** Rejects unless the promise fails with gRPC status `code`; returns the error. */
export async function expectStatus(promise: Promise<unknown>, code: number): Promise<GrpcError> {
  try {
    await promise;
  } catch (error) {
    const e = error as GrpcError;
    if (e.code !== code)
      throw new Error(`expected status ${code}, got ${e.code}: ${e.details}`, { cause: e });
    return e;
  }
  throw new Error(`expected status ${code}, the call succeeded`);
}
