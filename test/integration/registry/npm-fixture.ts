/**
 * A fixture npm registry: packuments and tarballs made by the real `npm pack`, served over the
 * registry protocol (`GET /<name>`, `GET /<name>/-/<file>.tgz`) on 127.0.0.1:0.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface FixtureVersion {
  readonly version: string;
  readonly publishedAt: number;
  readonly dependencies?: Readonly<Record<string, string>>;
}

export interface FixturePackage {
  readonly name: string;
  readonly versions: readonly FixtureVersion[];
}

interface Packed {
  readonly name: string;
  readonly versions: readonly (FixtureVersion & { integrity: string; shasum: string; file: string })[];
}

/** Packs every version with `npm pack` and keeps the tarballs. */
export async function packNpm(
  work: string,
  pkg: FixturePackage,
  tarballs: Map<string, Buffer>,
): Promise<Packed> {
  const base = pkg.name.slice(pkg.name.lastIndexOf('/') + 1);
  const out: Packed['versions'][number][] = [];
  for (const v of pkg.versions) {
    const dir = join(work, 'src', pkg.name.replace('/', '__'), v.version);
    await mkdir(dir, { recursive: true });
    const manifest = {
      name: pkg.name,
      version: v.version,
      main: 'index.js',
      license: 'MIT',
      dependencies: v.dependencies ?? {},
    };
    await writeFile(join(dir, 'package.json'), JSON.stringify(manifest, null, 2));
    await writeFile(
      join(dir, 'index.js'),
      `module.exports = ${JSON.stringify(`${pkg.name}@${v.version}`)};\n`,
    );
    const dest = join(work, 'packed');
    await mkdir(dest, { recursive: true });
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dest], { cwd: dir });
    const info = (JSON.parse(stdout) as { filename: string; integrity: string; shasum: string }[])[0];
    if (info === undefined) throw new Error('npm pack printed nothing');
    const bytes = await readFile(join(dest, info.filename));
    const file = `${base}-${v.version}.tgz`;
    tarballs.set(`${pkg.name}/-/${file}`, bytes);
    out.push({ ...v, integrity: info.integrity, shasum: info.shasum, file });
  }
  return { name: pkg.name, versions: out };
}

/** The packument of a packed package, with tarball URLs on `origin`. */
export function packument(p: Packed, origin: string): Record<string, unknown> {
  const versions: Record<string, unknown> = {};
  const time: Record<string, string> = {};
  for (const v of p.versions) {
    versions[v.version] = {
      name: p.name,
      version: v.version,
      main: 'index.js',
      license: 'MIT',
      dependencies: v.dependencies ?? {},
      dist: {
        integrity: v.integrity,
        shasum: v.shasum,
        tarball: `${origin}/${p.name}/-/${v.file}`,
        signatures: [{ keyid: 'SHA256:fixture', sig: 'MEUCIQDfixture' }],
      },
    };
    time[v.version] = new Date(v.publishedAt).toISOString();
  }
  const sorted = [...p.versions].sort((a, b) => a.publishedAt - b.publishedAt);
  time['created'] = new Date(sorted[0]?.publishedAt ?? 0).toISOString();
  time['modified'] = new Date(sorted.at(-1)?.publishedAt ?? 0).toISOString();
  const latest = sorted.at(-1)?.version ?? '0.0.0';
  return { _id: p.name, name: p.name, 'dist-tags': { latest }, versions, time, readme: `# ${p.name}` };
}

export interface NpmUpstream extends AsyncDisposable {
  readonly url: string;
  /** Requests seen, as `GET /path`. */
  readonly requests: string[];
  /** Replaces the answer to a path: a status with body, or bytes. */
  override(
    path: string,
    answer: { status: number; body: string | Buffer; headers?: Record<string, string> } | undefined,
  ): void;
  /** Current packuments by name (editable). */
  readonly packuments: Map<string, Record<string, unknown>>;
  readonly tarballs: Map<string, Buffer>;
}

/** Starts the fixture registry serving the given packed packages. */
export async function startNpmUpstream(
  work: string,
  packages: readonly FixturePackage[],
): Promise<NpmUpstream> {
  const tarballs = new Map<string, Buffer>();
  const packed: Packed[] = [];
  for (const p of packages) packed.push(await packNpm(work, p, tarballs));
  const packuments = new Map<string, Record<string, unknown>>();
  const overrides = new Map<
    string,
    { status: number; body: string | Buffer; headers?: Record<string, string> }
  >();
  const requests: string[] = [];
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0] ?? '/').slice(1);
    requests.push(`${req.method} /${path}`);
    const o = overrides.get(path);
    if (o !== undefined) {
      res.writeHead(o.status, o.headers ?? {});
      res.end(o.body);
      return;
    }
    const doc = packuments.get(path);
    if (doc !== undefined) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(doc));
      return;
    }
    const tgz = tarballs.get(path);
    if (tgz !== undefined) {
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(tgz.length),
      });
      res.end(tgz);
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"error":"Not found"}');
  };
  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  for (const p of packed) packuments.set(p.name, packument(p, url));
  return {
    url,
    requests,
    packuments,
    tarballs,
    override: (path, answer) => (answer === undefined ? overrides.delete(path) : overrides.set(path, answer)),
    async [Symbol.asyncDispose]() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** sha512 SRI of bytes, as npm writes `dist.integrity`. */
export const sri = (bytes: Buffer): string => `sha512-${createHash('sha512').update(bytes).digest('base64')}`;
