/**
 * The fixture upstream both proxies sit in front of: one packument of more than 10 MB (4000
 * versions with long manifests, like the biggest public packages) and one small one. An
 * optional throttle emulates a remote registry (time to first byte and transfer rate).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

const DAY = 86_400_000;

function packument(name: string, versions: number, padding: number, origin: string): Buffer {
  const now = Date.now();
  const v: Record<string, unknown> = {};
  const time: Record<string, string> = { created: new Date(now - 1000 * DAY).toISOString() };
  for (let i = 0; i < versions; i++) {
    const version = `${Math.floor(i / 100)}.${Math.floor(i / 10) % 10}.${i % 10}`;
    v[version] = {
      name,
      version,
      description: `Release ${version} of ${name}. `.padEnd(padding, 'lorem ipsum dolor sit amet '),
      main: 'index.js',
      dependencies: { 'dep-a': `^${i % 7}.0.0`, 'dep-b': '~2.1.0', 'dep-c': '>=1.0.0 <3' },
      dist: {
        integrity: `sha512-${Buffer.alloc(64, i % 256).toString('base64')}`,
        shasum: (i % 16).toString(16).repeat(40),
        tarball: `${origin}/${name}/-/${name}-${version}.tgz`,
      },
    };
    // The newest two versions are a day old: both proxies get something to filter or serve.
    time[version] = new Date(now - (i >= versions - 2 ? DAY : ((versions - i) * DAY) / 4)).toISOString();
  }
  time['modified'] = new Date(now - DAY).toISOString();
  const latest = Object.keys(v).at(-1) ?? '0.0.0';
  return Buffer.from(
    JSON.stringify({ _id: name, name, 'dist-tags': { latest }, versions: v, time, readme: `# ${name}\n` }),
  );
}

export interface Upstream {
  readonly url: string;
  readonly sizes: Readonly<Record<string, number>>;
  /** Bytes per second and first-byte delay; 0 disables the throttle. */
  throttle(bytesPerSecond: number, firstByteMs: number): void;
  requests(path: string): number;
  close(): Promise<void>;
}

export async function startUpstream(): Promise<Upstream> {
  const docs = new Map<string, Buffer>();
  const counts = new Map<string, number>();
  let rate = 0;
  let ttfb = 0;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    counts.set(path, (counts.get(path) ?? 0) + 1);
    const body = docs.get(path.slice(1));
    if (body === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Not found"}');
      return;
    }
    void (async () => {
      if (ttfb > 0) await delay(ttfb);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
      if (rate === 0) return void res.end(body);
      const chunk = 64 * 1024;
      const started = performance.now();
      for (let at = 0; at < body.length; at += chunk) {
        if (!res.write(body.subarray(at, at + chunk))) await new Promise((r) => res.once('drain', r));
        const due = ((at + chunk) / rate) * 1000 - (performance.now() - started);
        if (due > 1) await delay(due);
      }
      res.end();
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  docs.set('big-package', packument('big-package', 4000, 2400, url));
  docs.set('small-package', packument('small-package', 12, 200, url));
  return {
    url,
    sizes: Object.fromEntries([...docs].map(([k, v]) => [k, v.length])),
    throttle(bytesPerSecond, firstByteMs) {
      rate = bytesPerSecond;
      ttfb = firstByteMs;
    },
    requests: (path) => counts.get(path) ?? 0,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
