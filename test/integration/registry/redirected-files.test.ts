/**
 * Files an uplink answers with a redirect (Artifactory and Nexus with cloud storage, the npm
 * registry of a code host, Athens in redirect mode all send tarballs and zips to a storage host):
 * followed to the uplink's own origin and its `fileOrigins`, without the uplink's credentials on
 * another origin, and refused anywhere else.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Gateway, startGateway } from './harness.ts';
import { type NpmUpstream, startNpmUpstream } from './npm-fixture.ts';

const DAY = 86_400_000;
const NOW = Date.now();
let work: string;
let up: NpmUpstream;
let gw: Gateway;
let storage: Server;
let storagePort: number;
/** Requests the storage host saw: path and whether they carried credentials. */
const seen: { path: string; authorization: boolean }[] = [];

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'registry-redirected-'));
  const old = [{ version: '1.0.0', publishedAt: NOW - 20 * DAY }];
  up = await startNpmUpstream(work, [
    { name: 'moved', versions: old },
    { name: 'away', versions: old },
    { name: 'astray', versions: old },
  ]);
  storage = createServer((req, res) => {
    const path = req.url ?? '/';
    seen.push({ path, authorization: req.headers.authorization !== undefined });
    const bytes = up.tarballs.get(path.split('?')[0]?.replace(/^\/blob\//, '') ?? '');
    if (bytes === undefined) res.writeHead(404).end();
    else
      res
        .writeHead(200, { 'content-length': String(bytes.length) })
        .end(req.method === 'HEAD' ? undefined : bytes);
  });
  await new Promise<void>((resolve) => storage.listen(0, '127.0.0.1', resolve));
  storagePort = (storage.address() as AddressInfo).port;
  const moved = up.tarballs.get('moved/-/moved-1.0.0.tgz') as Buffer;
  up.override('moved/-/moved-1.0.0.tgz', {
    status: 302,
    body: '',
    headers: { location: '/store/moved.tgz' },
  });
  up.override('store/moved.tgz', { status: 200, body: moved });
  up.override('away/-/away-1.0.0.tgz', {
    status: 307,
    body: '',
    headers: { location: `http://127.0.0.1:${storagePort}/blob/away/-/away-1.0.0.tgz?sig=abc` },
  });
  // Same port, another origin: not listed in fileOrigins.
  up.override('astray/-/astray-1.0.0.tgz', {
    status: 302,
    body: '',
    headers: { location: `http://localhost:${storagePort}/blob/astray/-/astray-1.0.0.tgz` },
  });
  gw = await startGateway({
    config: {
      npm: {
        uplinks: [
          {
            name: 'corp',
            url: up.url,
            retries: 0,
            token: 'uplink-secret',
            fileOrigins: [`http://127.0.0.1:${storagePort}`],
          },
        ],
      },
      pypi: { enabled: false },
    },
  });
});

after(async () => {
  await gw?.[Symbol.asyncDispose]();
  await up?.[Symbol.asyncDispose]();
  storage?.closeAllConnections();
  await new Promise<void>((resolve) => (storage === undefined ? resolve() : storage.close(() => resolve())));
  await rm(work, { recursive: true, force: true });
});

void describe('files an uplink redirects', () => {
  void it('follows a redirect on the uplink origin and verifies the bytes', async () => {
    const head = await fetch(`${gw.url}/npm/moved/-/moved-1.0.0.tgz`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    const res = await fetch(`${gw.url}/npm/moved/-/moved-1.0.0.tgz`);
    assert.equal(res.status, 200, await res.clone().text());
    assert.ok(
      Buffer.from(await res.arrayBuffer()).equals(up.tarballs.get('moved/-/moved-1.0.0.tgz') as Buffer),
    );
  });

  void it('follows a redirect to a file origin without the uplink credentials', async () => {
    const res = await fetch(`${gw.url}/npm/away/-/away-1.0.0.tgz`);
    assert.equal(res.status, 200, await res.clone().text());
    assert.ok(
      Buffer.from(await res.arrayBuffer()).equals(up.tarballs.get('away/-/away-1.0.0.tgz') as Buffer),
    );
    const hits = seen.filter((s) => s.path.startsWith('/blob/away/'));
    assert.ok(hits.length > 0);
    assert.ok(
      hits.every((s) => !s.authorization),
      'the uplink token stayed on its origin',
    );
  });

  void it('refuses a redirect to an origin that is neither the uplink nor a file origin', async () => {
    const res = await fetch(`${gw.url}/npm/astray/-/astray-1.0.0.tgz`);
    const body = (await res.json()) as { code: string; error: string };
    assert.equal(res.status, 502, JSON.stringify(body));
    assert.equal(body.code, 'GW_ERR_REGISTRY_UPSTREAM_INVALID');
    assert.match(body.error, /fileOrigins/);
    assert.ok(!seen.some((s) => s.path.startsWith('/blob/astray/')), 'nothing was asked of that origin');
  });
});
