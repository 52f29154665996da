/**
 * Benchmark origins in their own process: a TLS server that streams a large body (bulk), a TLS
 * server answering a tiny body (connection rate), and an h2c server (L7 requests). Certificates
 * come as file paths in argv; prints `READY <json>` with the ports.
 */
import { readFileSync } from 'node:fs';
import { createServer as createH2c } from 'node:http2';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';

const [certFile = '', keyFile = '', bulkMiB = '512'] = process.argv.slice(2);
const tls = { cert: readFileSync(certFile), key: readFileSync(keyFile) };
const chunk = Buffer.alloc(1024 * 1024, 0x61);
const total = Number(bulkMiB);

const bulk = createHttps(tls, (_req, res) => {
  res.writeHead(200, { 'content-length': total * chunk.length });
  let sent = 0;
  const pump = () => {
    while (sent < total) {
      sent++;
      if (!res.write(chunk)) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
});
const small = createHttps(tls, (_req, res) => res.end('ok'));
const body = Buffer.from('{"ok":true}');
const h2c = createH2c((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
});
const listen = (s: { listen: (p: number, h: string, cb: () => void) => unknown; address: () => unknown }) =>
  new Promise<number>((resolve) =>
    s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)),
  );
const ports = { bulk: await listen(bulk), small: await listen(small), h2c: await listen(h2c) };
console.log(`READY ${JSON.stringify(ports)}`);
