/**
 * A minimal unary gRPC client on node:http2 for the kv benchmark's load side: one HTTP/2
 * session, each call one stream with the 5-byte length-prefixed protobuf message, the answer
 * read from the data frames and the status from the trailers (or a trailers-only answer).
 * It exists so that the load generator costs less CPU per call than the gateway it measures
 * (the Connect client spends ~0.5 ms per call); it is not the product's client.
 */
import { type ClientHttp2Session, connect, constants } from 'node:http2';
import { type DescMessage, fromBinary, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import { FRAME_HEAD, messageEncoder } from '../../src/doors/kv/codec.ts';

const WINDOW = 4 * 1024 * 1024;
const SESSION_WINDOW = 32 * 1024 * 1024;

export interface BenchGrpcClient {
  call<I extends DescMessage, O extends DescMessage>(
    method: string,
    input: I,
    output: O,
    message: MessageInitShape<I>,
  ): Promise<MessageShape<O>>;
  /** GOAWAY frames received, as `code/lastStreamId`; each one made the client reconnect. */
  readonly goaways: readonly string[];
  close(): void;
}

export function createBenchGrpcClient(options: {
  readonly url: string;
  readonly ca: string;
  readonly token: string;
  readonly service: string;
}): BenchGrpcClient {
  const goaways: string[] = [];
  const open = (): ClientHttp2Session => {
    // Windows as large as a batch's answers: with HTTP/2's default 64 KiB for the stream and the
    // whole connection, a few 16-64 KiB answers in flight would wait on WINDOW_UPDATEs.
    const s = connect(options.url, {
      ca: options.ca,
      servername: 'localhost',
      minVersion: 'TLSv1.3',
      settings: { initialWindowSize: WINDOW },
    });
    s.once('connect', () => s.setLocalWindowSize(SESSION_WINDOW));
    s.on('error', () => undefined);
    // Like any gRPC client: after a GOAWAY, new calls go on a new connection.
    s.on('goaway', (code: number, lastStreamId: number) => {
      goaways.push(`${code}/${lastStreamId}`);
      if (session === s) session = open();
    });
    return s;
  };
  let session = open();
  const authorization = `Bearer ${options.token}`;
  return {
    goaways,
    call(method, input, output, message) {
      // The gateway's own encoder, which writes the length-prefixed message in one buffer.
      const frame = messageEncoder(input).frame(message);
      return new Promise((resolve, reject) => {
        const stream = session.request({
          [constants.HTTP2_HEADER_METHOD]: 'POST',
          [constants.HTTP2_HEADER_PATH]: `/${options.service}/${method}`,
          'content-type': 'application/grpc+proto',
          te: 'trailers',
          authorization,
        });
        let status: string | undefined;
        let detail = '';
        const chunks: Buffer[] = [];
        stream.on('response', (headers) => {
          // A trailers-only answer carries the status in the headers.
          const s = headers['grpc-status'];
          if (typeof s === 'string') {
            status = s;
            detail = String(headers['grpc-message'] ?? '');
          }
        });
        stream.on('trailers', (trailers) => {
          status = String(trailers['grpc-status']);
          detail = String(trailers['grpc-message'] ?? '');
        });
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('error', reject);
        stream.on('end', () => {
          if (status !== '0') {
            reject(new Error(`grpc-status ${status}: ${decodeURIComponent(detail)}`));
            return;
          }
          const data = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
          const length = data.length >= FRAME_HEAD ? data.readUInt32BE(1) : -1;
          if (length !== data.length - FRAME_HEAD) {
            reject(new Error(`Malformed gRPC answer of ${data.length} bytes`));
            return;
          }
          resolve(fromBinary(output, data.subarray(FRAME_HEAD)));
        });
        stream.end(frame);
      });
    },
    close: () => session.close(),
  };
}
