import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { brotliCompressSync, constants as zlib, gzipSync } from 'node:zlib';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { HttpServer } from '#core/http';

/** Paths that belong to the API, the ecosystems and the probes: never answered with the console. */
export const RESERVED_PREFIXES = [
  '/api/',
  '/npm/',
  '/pypi/',
  '/v2/',
  '/go/',
  '/maven/',
  '/metrics',
  '/healthz',
  '/readyz',
  '/.well-known/',
] as const;

/** The placeholder Vite writes where the per-response nonce goes (web/vite.config.ts). */
export const CSP_NONCE_PLACEHOLDER = 'GATEHOUSE_CSP_NONCE';

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

/** Vite's hashed output names: `name-<8+ url-safe base64 chars>.ext` under assets/. */
const HASHED = /^\/assets\/.+-[A-Za-z0-9_-]{8,}\.[a-z0-9]+$/;

interface StaticFile {
  readonly body: Buffer;
  readonly br: Buffer | undefined;
  readonly gzip: Buffer | undefined;
  readonly type: string;
  readonly etag: string;
  readonly immutable: boolean;
}

/**
 * The console's CSP: scripts and styles only from this origin, plus the Emotion `<style>`
 * elements carrying this response's nonce; no inline script, no plugins, no framing.
 */
export function consoleCsp(nonce: string): string {
  return [
    "default-src 'self'",
    `script-src 'self' 'nonce-${nonce}'`,
    `style-src 'self' 'nonce-${nonce}'`,
    "img-src 'self' data: blob:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function compressible(type: string, size: number): boolean {
  return size > 1024 && /^(text\/|application\/(json|manifest)|image\/svg)/.test(type);
}

function load(path: string, urlPath: string): StaticFile {
  const body = readFileSync(path);
  const type = TYPES[extname(path)] ?? 'application/octet-stream';
  const squeeze = compressible(type, body.length);
  return {
    body,
    // Compressed once at start: the files are small and fixed until the next build.
    br: squeeze ? brotliCompressSync(body, { params: { [zlib.BROTLI_PARAM_QUALITY]: 9 } }) : undefined,
    gzip: squeeze ? gzipSync(body, { level: 9 }) : undefined,
    type,
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
    immutable: HASHED.test(urlPath),
  };
}

function walk(dir: string, root: string, out: Map<string, StaticFile>): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path, root, out);
    else if (entry.isFile()) {
      const urlPath = `/${relative(root, path).split(sep).join('/')}`;
      if (urlPath !== '/index.html' && urlPath !== '/client-routes.json')
        out.set(urlPath, load(path, urlPath));
    }
  }
}

function encodingOf(request: FastifyRequest, file: StaticFile): 'br' | 'gzip' | undefined {
  const accept = request.headers['accept-encoding'] ?? '';
  if (file.br !== undefined && /\bbr\b/.test(accept)) return 'br';
  if (file.gzip !== undefined && /\bgzip\b/.test(accept)) return 'gzip';
  return undefined;
}

function sendFile(request: FastifyRequest, reply: FastifyReply, file: StaticFile): FastifyReply {
  reply
    .header('content-type', file.type)
    .header('etag', file.etag)
    .header('vary', 'Accept-Encoding')
    .header('cache-control', file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
  if (request.headers['if-none-match'] === file.etag) return reply.code(304).send();
  const encoding = encodingOf(request, file);
  if (encoding !== undefined) reply.header('content-encoding', encoding);
  return reply.send(encoding === 'br' ? file.br : encoding === 'gzip' ? file.gzip : file.body);
}

function isReserved(pattern: string): boolean {
  return (
    pattern === '/' || RESERVED_PREFIXES.some((p) => pattern.startsWith(p) || `${pattern}/`.startsWith(p))
  );
}

function clientRoutesOf(distDir: string): string[] {
  const file = join(distDir, 'client-routes.json');
  if (!existsSync(file)) return [];
  const routes = JSON.parse(readFileSync(file, 'utf8')) as unknown;
  if (!Array.isArray(routes) || !routes.every((r) => typeof r === 'string' && r.startsWith('/')))
    throw new TypeError(`"${file}" must be a JSON array of paths starting with "/"`);
  for (const r of routes as string[])
    if (isReserved(r)) throw new RangeError(`Console route "${r}" overlaps a reserved server path`);
  return routes as string[];
}

/**
 * Serves the built console (`web/dist`) on the main server: `/` and each client route answer
 * index.html with a fresh CSP nonce and `no-cache`; hashed assets are immutable for a year;
 * other files revalidate by ETag. Paths under the API, ecosystem and probe prefixes are never
 * touched. Returns false (and registers nothing) when `distDir` holds no index.html.
 */
export function registerWebUi(http: HttpServer, distDir: string): boolean {
  const indexPath = join(distDir, 'index.html');
  if (!existsSync(indexPath)) return false;
  const index = readFileSync(indexPath, 'utf8');
  const files = new Map<string, StaticFile>();
  walk(distDir, distDir, files);
  const sendIndex = (_request: FastifyRequest, reply: FastifyReply) => {
    const nonce = randomBytes(18).toString('base64');
    return reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header('content-security-policy', consoleCsp(nonce))
      .header('cross-origin-opener-policy', 'same-origin')
      .send(index.replaceAll(CSP_NONCE_PLACEHOLDER, nonce));
  };
  http.app.get('/', sendIndex);
  http.app.get('/index.html', sendIndex);
  for (const route of clientRoutesOf(distDir)) http.app.get(route, sendIndex);
  for (const [urlPath, file] of files) {
    if (isReserved(urlPath))
      throw new RangeError(`Console file "${urlPath}" overlaps a reserved server path`);
    http.app.get(urlPath, (request, reply) => sendFile(request, reply, file));
  }
  return true;
}
