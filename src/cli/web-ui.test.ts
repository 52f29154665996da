import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { createHealthRegistry } from '#core/app';
import { validateRaw } from '#core/config';
import { GatewayError } from '#core/errors';
import { createHttpServer, httpConfigSchema, type MainHttpServer } from '#core/http';
import { createLogger } from '#core/log';
import { createMetrics } from '#core/metrics';
import { createLimiterFactory } from '#core/ratelimit';
import { authorize } from '#core/rbac';
import { CSP_NONCE_PLACEHOLDER, registerWebUi } from './web-ui.ts';

const INDEX = `<!doctype html><html><head><meta property="csp-nonce" nonce="${CSP_NONCE_PLACEHOLDER}">
<script type="module" src="/assets/index-AbCd1234.js" nonce="${CSP_NONCE_PLACEHOLDER}"></script></head><body><div id="root"></div></body></html>`;
const SCRIPT = `console.log(${JSON.stringify('x'.repeat(4000))});\n`;

function makeDist(routes: readonly string[] = ['/login', '/artifacts', '/artifacts/*', '/admin/*']): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-web-dist-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), INDEX);
  writeFileSync(join(dir, 'assets', 'index-AbCd1234.js'), SCRIPT);
  writeFileSync(join(dir, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  writeFileSync(join(dir, 'client-routes.json'), JSON.stringify(routes));
  return dir;
}

async function makeServer(): Promise<MainHttpServer> {
  const clock = { now: () => Date.now() };
  return createHttpServer({
    config: validateRaw(httpConfigSchema, { listen: '127.0.0.1:0' }, 'test'),
    log: createLogger({ level: 'error' }),
    metrics: createMetrics({ processMetrics: false }),
    authenticator: { authenticate: () => Promise.reject(new GatewayError('GW_ERR_AUTH_REQUIRED')) },
    authorize,
    limiters: createLimiterFactory({ clock }),
    clock,
    health: createHealthRegistry({ clock }),
  });
}

const nonceOf = (csp: string | null) => /'nonce-([^']+)'/.exec(csp ?? '')?.[1];

describe('registerWebUi', () => {
  let dist: string;
  let server: MainHttpServer;
  let url: string;
  before(async () => {
    dist = makeDist();
    server = await makeServer();
    assert.equal(registerWebUi(server, dist), true);
    url = await server.listen();
  });
  after(async () => {
    await server.close(AbortSignal.timeout(2000));
    rmSync(dist, { recursive: true, force: true });
  });

  it('serves index.html at / with no-cache and a fresh nonce in both the CSP and the document', async () => {
    const a = await fetch(`${url}/`);
    const b = await fetch(`${url}/`);
    assert.equal(a.status, 200);
    assert.match(a.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal(a.headers.get('cache-control'), 'no-cache');
    const csp = a.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self' 'nonce-/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.match(csp, /frame-ancestors 'none'/);
    const nonce = nonceOf(csp);
    assert.ok(nonce !== undefined && nonce.length >= 16);
    const body = await a.text();
    assert.ok(!body.includes(CSP_NONCE_PLACEHOLDER));
    assert.equal(body.split(`nonce="${nonce}"`).length - 1, 2);
    assert.notEqual(nonceOf(b.headers.get('content-security-policy')), nonce);
    await b.text();
  });

  it('falls back to index.html on client routes, including deep ones', async () => {
    for (const path of [
      '/login',
      '/artifacts',
      '/artifacts/0b7c-uuid',
      '/admin/users',
      '/login?next=%2Faudit',
    ]) {
      const response = await fetch(url + path);
      assert.equal(response.status, 200, path);
      assert.ok((await response.text()).includes('<div id="root">'), path);
    }
  });

  it('marks hashed assets immutable, revalidates by ETag and compresses', async () => {
    const plain = await fetch(`${url}/assets/index-AbCd1234.js`, {
      headers: { 'accept-encoding': 'identity' },
    });
    assert.equal(plain.status, 200);
    assert.equal(plain.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.match(plain.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.equal(await plain.text(), SCRIPT);
    const etag = plain.headers.get('etag') ?? '';
    const again = await fetch(`${url}/assets/index-AbCd1234.js`, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
    for (const [encoding, decode] of [
      ['br', brotliDecompressSync],
      ['gzip', gunzipSync],
    ] as const) {
      const raw = await new Promise<{ headers: Headers; body: Buffer }>((resolve, reject) => {
        // fetch would decode transparently; read the bytes as sent.
        void import('node:http').then(({ get }) =>
          get(`${url}/assets/index-AbCd1234.js`, { headers: { 'accept-encoding': encoding } }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              resolve({
                headers: new Headers(res.headers as Record<string, string>),
                body: Buffer.concat(chunks),
              }),
            );
          }).on('error', reject),
        );
      });
      assert.equal(raw.headers.get('content-encoding'), encoding);
      assert.equal(decode(raw.body).toString(), SCRIPT);
    }
  });

  it('lets other files revalidate every time', async () => {
    const response = await fetch(`${url}/favicon.svg`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('cache-control'), 'no-cache');
    assert.equal(response.headers.get('content-type'), 'image/svg+xml');
  });

  it('never answers reserved or unknown paths with the console', async () => {
    for (const path of [
      '/api/nope',
      '/api/artifacts/x/y/z',
      '/npm/left-pad',
      '/pypi/simple/x/',
      '/v2/',
      '/go/x',
      '/maven/a/b',
      '/.well-known/jwks.json',
      '/unknown-page',
      '/assets/missing-AbCd1234.js',
      '/client-routes.json',
    ]) {
      const response = await fetch(url + path);
      assert.equal(response.status, 404, path);
      assert.match(response.headers.get('content-type') ?? '', /problem\+json/, path);
    }
    const metrics = await fetch(`${url}/metrics`);
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/);
    assert.doesNotMatch(await metrics.text(), /<div id="root">/);
  });

  it('keeps 404 (not 405) for other methods on API paths', async () => {
    const response = await fetch(`${url}/api/nope`, { method: 'POST' });
    assert.equal(response.status, 404);
    await response.text();
  });
});

describe('registerWebUi configuration', () => {
  it('returns false and registers nothing without a build', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'gatehouse-web-empty-'));
    const server = await makeServer();
    try {
      assert.equal(registerWebUi(server, empty), false);
      assert.equal(registerWebUi(server, join(empty, 'missing')), false);
      const url = await server.listen();
      assert.equal((await fetch(`${url}/`)).status, 404);
    } finally {
      await server.close(AbortSignal.timeout(2000));
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('refuses client routes that overlap reserved server paths', async () => {
    for (const bad of ['/api/*', '/npm/x', '/metrics', '/healthz', '/.well-known/x', '/v2/*', '/']) {
      const dist = makeDist([bad]);
      const server = await makeServer();
      try {
        assert.throws(() => registerWebUi(server, dist), RangeError, bad);
      } finally {
        await server.close(AbortSignal.timeout(2000));
        rmSync(dist, { recursive: true, force: true });
      }
    }
  });
});
