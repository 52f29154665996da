/**
 * The least an L7 proxy built on node:http2 can do per request, for the benchmark's ceiling row:
 * TLS + HTTP/2 server, four h2c sessions to the backend, pseudo-headers and one forwarding
 * header copied, the response relayed. No routing, policies, metrics, deadlines or trailers.
 * argv: certificate file, key file, h2c backend port; prints `READY {"l7":<port>}`.
 */
import { readFileSync } from 'node:fs';
import { connect, constants, createSecureServer, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';

const [certFile = '', keyFile = '', backendPort = '0'] = process.argv.slice(2);
const sessions = Array.from({ length: 4 }, () => connect(`http://127.0.0.1:${backendPort}`));
for (const s of sessions) s.on('error', () => {});
let next = 0;
const text = (h: IncomingHttpHeaders, name: string) => {
  const v = h[name];
  return typeof v === 'string' ? v : '';
};
const server = createSecureServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) });
server.on('stream', (stream, headers, flags: number) => {
  stream.on('error', () => {});
  const upstream = sessions[next++ % sessions.length]?.request(
    {
      ':method': text(headers, ':method'),
      ':path': text(headers, ':path'),
      ':authority': text(headers, ':authority'),
      'x-forwarded-for': stream.session?.socket?.remoteAddress ?? '',
    },
    { endStream: (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0 },
  );
  if (upstream === undefined) return;
  upstream.on('error', () => stream.destroy());
  upstream.on('response', (h) => {
    if (stream.destroyed) return;
    stream.respond({ ':status': h[':status'] ?? 502, 'content-type': text(h, 'content-type') });
    upstream.on('data', (chunk: Buffer) => stream.write(chunk));
    upstream.on('end', () => stream.end());
  });
});
server.listen(0, '127.0.0.1', () => {
  console.log(`READY ${JSON.stringify({ l7: (server.address() as AddressInfo).port })}`);
});
