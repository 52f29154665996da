import { type Client, createClient, type Interceptor } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { KvService } from '#gen/gatehouse/kv/v1/kv_pb.ts';

export interface KvClientOptions {
  /** `https://host:port` of the kv listener. */
  readonly url: string;
  /** PEM of the CA that signed the server certificate (e.g. the development CA). */
  readonly ca?: string;
  /** Bearer token (access token or external JWT) or an API key. */
  readonly token?: string;
  /** Client certificate and key (PEM) for mTLS. */
  readonly cert?: string;
  readonly key?: string;
  /** Default deadline of a call. */
  readonly timeoutMs?: number;
}

/** The typed kv API client. */
export type KvClient = Client<typeof KvService>;

/**
 * A gRPC client of the kv door over HTTP/2 and TLS 1.3, as the CLI and the benchmark use it.
 * Tokens that look like API keys travel in `x-api-key`, everything else as a bearer token.
 */
export function createKvClient(options: KvClientOptions): KvClient {
  const auth: Interceptor = (next) => async (req) => {
    if (options.token !== undefined && options.token !== '') {
      if (options.token.startsWith('gh_')) req.header.set('x-api-key', options.token);
      else req.header.set('authorization', `Bearer ${options.token}`);
    }
    return next(req);
  };
  const transport = createGrpcTransport({
    baseUrl: options.url,
    interceptors: [auth],
    ...(options.timeoutMs === undefined ? {} : { defaultTimeoutMs: options.timeoutMs }),
    nodeOptions: {
      minVersion: 'TLSv1.3',
      // Batch answers of several 64 KiB: HTTP/2's default 64 KiB stream window would stall each.
      settings: { initialWindowSize: 1024 * 1024 },
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      ...(options.cert === undefined ? {} : { cert: options.cert }),
      ...(options.key === undefined ? {} : { key: options.key }),
    },
  });
  return createClient(KvService, transport);
}
