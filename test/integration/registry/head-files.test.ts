/**
 * HEAD of a package file: on a miss the uplink's HEAD answers (nothing downloaded, nothing
 * cached), on a hit the cache answers, and a refused version is refused as a GET is. A fixture
 * Maven repository records every request by method; a proxy in front of it stands for an uplink
 * that does not implement HEAD (405) but honours a one-byte Range.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually } from '#testing/eventually';
import { type Gateway, startGateway } from './harness.ts';
import { type MavenUpstream, startMavenUpstream } from './maven-fixture.ts';

const DAY = 86_400_000;
const NOW = Date.now();
const LIB = '/org/example/lib';
const TOOL = '/org/other/tool';

let up: MavenUpstream;
let gw: Gateway;
let noHead: { server: Server; url: string; requests: string[] };

/** Files in the blob cache (verified downloads), leaving out temporary ones. */
async function cachedFiles(): Promise<string[]> {
  const root = join(gw.dataDir, 'registry', 'blobs');
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile() && !join(e.parentPath, e.name).startsWith(join(root, 'tmp')))
    .map((e) => e.name);
}

/** The fixture's own bytes of a file, read around the gateway (and left out of the request log). */
async function upstreamBytes(path: string): Promise<Buffer> {
  const seen = up.requests.length;
  const bytes = Buffer.from(await (await fetch(`${up.url}${path}`)).arrayBuffer());
  up.requests.splice(seen);
  return bytes;
}

before(async () => {
  up = await startMavenUpstream({
    'org.example:lib': [
      { version: '1.0', publishedAt: NOW - 30 * DAY },
      { version: '2.0', publishedAt: NOW - 3_600_000 },
    ],
    'org.other:tool': [{ version: '1.0', publishedAt: NOW - 30 * DAY }],
    'org.other:plain': [{ version: '1.0', publishedAt: NOW - 30 * DAY }],
  });
  const requests: string[] = [];
  const target = new URL(up.url);
  const server = createServer((req, res) => {
    const range = req.headers.range;
    requests.push(`${req.method} ${req.url}${range === undefined ? '' : ` ${range}`}`);
    // The jar only: the door reads a POM's Last-Modified with a HEAD.
    // `plain` answers 501 Not Implemented, `tool` 405: both mean "no HEAD here".
    if (req.method === 'HEAD' && req.url?.endsWith('.jar') === true) {
      if (req.url.includes('/plain/')) res.writeHead(501).end();
      else res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    const forward = httpRequest(
      { host: target.hostname, port: target.port, method: 'GET', path: req.url },
      (upstream) => {
        const parts: Buffer[] = [];
        upstream.on('data', (c: Buffer) => parts.push(c));
        upstream.on('end', () => {
          const body = Buffer.concat(parts);
          // `plain` stands for a server that ignores Range and sends the whole file.
          if (range === 'bytes=0-0' && upstream.statusCode === 200 && !req.url?.includes('/plain/')) {
            res
              .writeHead(206, { 'content-range': `bytes 0-0/${body.length}`, 'content-length': '1' })
              .end(body.subarray(0, 1));
            return;
          }
          res.writeHead(upstream.statusCode ?? 502, upstream.headers).end(body);
        });
      },
    );
    forward.on('error', () => res.destroy());
    forward.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  noHead = { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
  gw = await startGateway({
    config: {
      npm: { enabled: false },
      maven: {
        uplinks: [
          { name: 'central', url: `${up.url}/`, packages: ['org.example:*'], retries: 0 },
          // Default retries and breaker: a 501 is an answer, neither retried nor a failure.
          { name: 'nohead', url: `${noHead.url}/`, packages: ['org.other:*'] },
        ],
      },
      policy: { rules: [{ id: 'min-age', type: 'minimumAge', minimumAge: { age: '2d' } }] },
    },
  });
});

after(async () => {
  await gw?.[Symbol.asyncDispose]();
  noHead?.server.closeAllConnections();
  noHead?.server.close();
  await up?.[Symbol.asyncDispose]();
});

/** The fixture's requests for `path` since `from`. */
const requestsFor = (from: number, path: string) =>
  up.requests.slice(from).filter((r) => r.endsWith(` ${path}`));

void describe('HEAD of a package file', () => {
  void it('answers a miss from the uplink HEAD: no GET, nothing cached', async () => {
    const jar = `${LIB}/1.0/lib-1.0.jar`;
    const bytes = await upstreamBytes(jar);
    const from = up.requests.length;
    const res = await fetch(`${gw.url}/maven${jar}`, { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-length'), String(bytes.length));
    assert.equal(res.headers.get('content-type'), 'application/java-archive');
    assert.deepEqual(requestsFor(from, jar), [`HEAD ${jar}`]);
    assert.deepEqual(await cachedFiles(), []);
  });

  void it('answers a hit from the cache, without asking the uplink for the file', async () => {
    const jar = `${LIB}/1.0/lib-1.0.jar`;
    const bytes = await upstreamBytes(jar);
    const get = await fetch(`${gw.url}/maven${jar}`);
    assert.equal(get.status, 200);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), bytes);
    // The verified file is moved into the cache once the last byte went out.
    await eventually(async () => (await cachedFiles()).length, 1);
    const from = up.requests.length;
    const res = await fetch(`${gw.url}/maven${jar}`, { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-length'), String(bytes.length));
    assert.deepEqual(requestsFor(from, jar), []);
  });

  void it('refuses a version policy refuses, as a GET is refused, without touching the file', async () => {
    const jar = `${LIB}/2.0/lib-2.0.jar`;
    const from = up.requests.length;
    const get = await fetch(`${gw.url}/maven${jar}`);
    const head = await fetch(`${gw.url}/maven${jar}`, { method: 'HEAD' });
    assert.equal(get.status, 403);
    assert.equal(head.status, 403);
    assert.match(get.statusText, /minimum age/);
    assert.equal(head.statusText, get.statusText);
    assert.deepEqual(requestsFor(from, jar), []);
  });

  void it('asks an uplink without HEAD for one byte, and cuts off a body that ignores the Range', async () => {
    // `tool` gets a 206 of one byte; `plain` the whole file, cut off after its headers.
    for (const jar of [`${TOOL}/1.0/tool-1.0.jar`, '/org/other/plain/1.0/plain-1.0.jar']) {
      const bytes = await upstreamBytes(jar);
      const cached = await cachedFiles();
      const res = await fetch(`${gw.url}/maven${jar}`, { method: 'HEAD' });
      assert.equal(res.status, 200, jar);
      assert.equal(res.headers.get('content-length'), String(bytes.length), jar);
      assert.deepEqual(
        noHead.requests.filter((r) => r.split(' ')[1] === jar),
        [`HEAD ${jar}`, `GET ${jar} bytes=0-0`],
      );
      assert.deepEqual(await cachedFiles(), cached, jar);
    }
    // Many such HEADs at once leave the uplink's breaker closed: a GET still goes through.
    const plain = '/org/other/plain/1.0/plain-1.0.jar';
    const heads = await Promise.all(
      Array.from({ length: 6 }, () => fetch(`${gw.url}/maven${plain}`, { method: 'HEAD' })),
    );
    assert.deepEqual(
      heads.map((r) => r.status),
      [200, 200, 200, 200, 200, 200],
    );
    const get = await fetch(`${gw.url}/maven${plain}`);
    assert.equal(get.status, 200, await get.clone().text());
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), await upstreamBytes(plain));
  });

  void it('answers a file the uplink does not have with 404, as a GET does', async () => {
    up.raw.set(`${LIB}/1.0/lib-1.0-sources.jar.sha1`, '0'.repeat(40));
    const path = `/maven${LIB}/1.0/lib-1.0-sources.jar`;
    const head = await fetch(`${gw.url}${path}`, { method: 'HEAD' });
    const get = await fetch(`${gw.url}${path}`);
    assert.equal(head.status, 404);
    assert.equal(get.status, 404);
  });
});
