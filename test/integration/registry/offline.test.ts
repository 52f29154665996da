/**
 * Offline operation: what a client fetched through the door while the uplink was up (metadata
 * and the files it names) is served again once the uplink is down and metadataTtl has passed.
 * The uplinks sit behind a switchable proxy; the gateway's clock is moved by hand.
 */
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type GoUpstream, startGoUpstream } from './go-fixture.ts';
import { type Gateway, startGateway, TestClock } from './harness.ts';
import { type MavenUpstream, startMavenUpstream } from './maven-fixture.ts';

const DAY = 86_400_000;
const NOW = Date.now();
const iso = (t: number) => new Date(t).toISOString();

/** A reverse proxy to `target` that answers 503 while `down.on`. */
async function switchable(target: string, down: { on: boolean }): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    if (down.on) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('maintenance\n');
      return;
    }
    const t = new URL(target);
    const forward = httpRequest(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers },
      (upstream) => {
        res.writeHead(upstream.statusCode ?? 502, upstream.headers);
        upstream.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const down = { on: false };
const clock = new TestClock(NOW);
let go: GoUpstream;
let goProxy: { server: Server; url: string };
let maven: MavenUpstream;
let mavenProxy: { server: Server; url: string };
let gw: Gateway;

before(async () => {
  go = await startGoUpstream({
    'example.test/kept': [
      { version: 'v1.0.0', time: iso(NOW - 30 * DAY), files: { 'kept.go': 'package kept\n' } },
    ],
  });
  goProxy = await switchable(go.url, down);
  maven = await startMavenUpstream({ 'org.example:kept': [{ version: '1.0', publishedAt: NOW - 30 * DAY }] });
  mavenProxy = await switchable(maven.url, down);
  gw = await startGateway({
    clock,
    config: {
      npm: { enabled: false },
      maven: { uplinks: [{ name: 'central', url: `${mavenProxy.url}/`, retries: 0 }] },
      go: {
        uplinks: [{ name: 'goproxy', url: `${goProxy.url}/`, retries: 0 }],
        checksumDb: { name: 'sumdb', url: `${goProxy.url}/sumdb/test/` },
        checksumDbKey: go.sumdbKey,
      },
      policy: { rules: [{ id: 'min-age', type: 'minimumAge', minimumAge: { age: '2d' } }] },
    },
  });
});

after(async () => {
  await gw?.[Symbol.asyncDispose]();
  for (const proxy of [goProxy, mavenProxy]) {
    proxy?.server.closeAllConnections();
    proxy?.server.close();
  }
  await go?.[Symbol.asyncDispose]();
  await maven?.[Symbol.asyncDispose]();
});

/** Fetches every path while the uplink is up, then again once it is down and metadataTtl has passed. */
async function upThenDown(paths: readonly string[]): Promise<Map<string, Response>> {
  const seen = new Map<string, Buffer>();
  for (const path of paths) {
    const r = await fetch(`${gw.url}${path}`);
    assert.equal(r.status, 200, path);
    seen.set(path, Buffer.from(await r.arrayBuffer()));
  }
  clock.time += 10 * 60_000;
  down.on = true;
  const later = new Map<string, Response>();
  try {
    for (const path of paths) {
      const r = await fetch(`${gw.url}${path}`);
      const body = Buffer.from(await r.arrayBuffer());
      assert.equal(r.status, 200, `${path}: ${body.toString('utf8').slice(0, 300)}`);
      assert.deepEqual(body, seen.get(path), path);
      later.set(path, r);
    }
  } finally {
    down.on = false;
  }
  return later;
}

void describe('an uplink that goes down', () => {
  void it('serves a Go module seen before: list stale with Warning 110, .info, .mod and .zip as they were', async () => {
    const base = '/go/example.test/kept/@v';
    const later = await upThenDown([
      `${base}/list`,
      `${base}/v1.0.0.info`,
      `${base}/v1.0.0.mod`,
      `${base}/v1.0.0.zip`,
    ]);
    assert.match(later.get(`${base}/list`)?.headers.get('warning') ?? '', /^110 gatehouse/);
  });

  void it('serves a Maven artifact seen before: metadata stale with Warning 110, POM, jar and sidecars', async () => {
    const base = '/maven/org/example/kept';
    const later = await upThenDown([
      `${base}/maven-metadata.xml`,
      `${base}/1.0/kept-1.0.pom`,
      `${base}/1.0/kept-1.0.pom.sha1`,
      `${base}/1.0/kept-1.0.jar`,
      `${base}/1.0/kept-1.0.jar.sha1`,
      `${base}/1.0/kept-1.0.jar.md5`,
    ]);
    assert.match(later.get(`${base}/maven-metadata.xml`)?.headers.get('warning') ?? '', /^110 gatehouse/);
  });
});
