/**
 * A fixture PyPI: wheels (built here with Python's zipfile, in the wheel format pip installs)
 * and sdists (built by setuptools' `setup.py sdist`), served over the PEP 691 JSON simple API,
 * PEP 658 `.metadata` files and the JSON API on 127.0.0.1:0.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const WHEEL_BUILDER = `
import base64, hashlib, sys, zipfile
name, version, dest = sys.argv[1], sys.argv[2], sys.argv[3]
mod = name.replace('-', '_')
dist = f"{mod}-{version}.dist-info"
files = {
  f"{mod}/__init__.py": f"VERSION = {version!r}\\n".encode(),
  f"{dist}/METADATA": f"Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\nRequires-Python: >=3.8\\n".encode(),
  f"{dist}/WHEEL": b"Wheel-Version: 1.0\\nGenerator: gatehouse-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
}
record = []
for path, data in files.items():
  digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
  record.append(f"{path},sha256={digest},{len(data)}")
record.append(f"{dist}/RECORD,,")
files[f"{dist}/RECORD"] = ("\\n".join(record) + "\\n").encode()
out = f"{dest}/{mod}-{version}-py3-none-any.whl"
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
  for path, data in files.items():
    z.writestr(path, data)
sys.stdout.write(files[f"{dist}/METADATA"].decode())
`;

export interface PyFixtureVersion {
  readonly version: string;
  readonly publishedAt: number;
}

interface PyFile {
  readonly filename: string;
  readonly bytes: Buffer;
  readonly version: string;
  readonly uploadTime: string;
  readonly metadata?: Buffer;
}

async function buildVersion(work: string, name: string, v: PyFixtureVersion): Promise<PyFile[]> {
  const dest = join(work, 'dist', name, v.version);
  await mkdir(dest, { recursive: true });
  const { stdout: metadata } = await run('python3', ['-c', WHEEL_BUILDER, name, v.version, dest]);
  const src = join(work, 'src', name, v.version);
  await mkdir(join(src, name.replace(/-/g, '_')), { recursive: true });
  await writeFile(
    join(src, name.replace(/-/g, '_'), '__init__.py'),
    `VERSION = ${JSON.stringify(v.version)}\n`,
  );
  await writeFile(
    join(src, 'setup.py'),
    `from setuptools import setup\nsetup(name=${JSON.stringify(name)}, version=${JSON.stringify(v.version)}, packages=[${JSON.stringify(name.replace(/-/g, '_'))}])\n`,
  );
  await run('python3', ['setup.py', '-q', 'sdist', '--formats=gztar', '--dist-dir', dest], { cwd: src });
  const uploadTime = new Date(v.publishedAt).toISOString();
  const out: PyFile[] = [];
  for (const filename of await readdir(dest)) {
    const bytes = await readFile(join(dest, filename));
    out.push({
      filename,
      bytes,
      version: v.version,
      uploadTime,
      ...(filename.endsWith('.whl') ? { metadata: Buffer.from(metadata) } : {}),
    });
  }
  return out;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export interface PypiUpstream extends AsyncDisposable {
  readonly url: string;
  readonly requests: string[];
  readonly files: Map<string, PyFile>;
  override(
    path: string,
    answer: { status: number; body: string; headers?: Record<string, string> } | undefined,
  ): void;
}

function simpleJson(name: string, files: readonly PyFile[], origin: string): string {
  return JSON.stringify({
    meta: { 'api-version': '1.1' },
    name,
    versions: [...new Set(files.map((f) => f.version))],
    files: files.map((f) => ({
      filename: f.filename,
      url: `${origin}/files/${f.filename}`,
      hashes: { sha256: sha256(f.bytes) },
      'requires-python': '>=3.8',
      'upload-time': f.uploadTime,
      size: f.bytes.length,
      yanked: false,
      ...(f.metadata === undefined ? {} : { 'core-metadata': { sha256: sha256(f.metadata) } }),
    })),
  });
}

function jsonApi(name: string, files: readonly PyFile[], origin: string): string {
  const releases: Record<string, unknown[]> = {};
  for (const f of files) {
    (releases[f.version] ??= []).push({
      filename: f.filename,
      url: `${origin}/files/${f.filename}`,
      digests: { sha256: sha256(f.bytes) },
      upload_time_iso_8601: f.uploadTime,
      packagetype: f.filename.endsWith('.whl') ? 'bdist_wheel' : 'sdist',
      size: f.bytes.length,
    });
  }
  const latest = [...files].sort((a, b) => a.uploadTime.localeCompare(b.uploadTime)).at(-1)?.version;
  return JSON.stringify({
    info: { name, version: latest },
    releases,
    urls: releases[latest ?? ''] ?? [],
    last_serial: 1,
  });
}

/** Starts the fixture index serving the given projects. */
export async function startPypiUpstream(
  work: string,
  projects: Readonly<Record<string, readonly PyFixtureVersion[]>>,
): Promise<PypiUpstream> {
  const byProject = new Map<string, PyFile[]>();
  const files = new Map<string, PyFile>();
  for (const [name, versions] of Object.entries(projects)) {
    const all: PyFile[] = [];
    for (const v of versions) all.push(...(await buildVersion(work, name, v)));
    byProject.set(name, all);
    for (const f of all) files.set(f.filename, f);
  }
  const requests: string[] = [];
  const overrides = new Map<string, { status: number; body: string; headers?: Record<string, string> }>();
  let origin = '';
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    requests.push(`${req.method} ${path}`);
    const o = overrides.get(path);
    if (o !== undefined) return void res.writeHead(o.status, o.headers ?? {}).end(o.body);
    let m = /^\/simple\/([^/]+)\/$/.exec(path);
    if (m !== null && byProject.has(m[1] as string)) {
      res.writeHead(200, { 'content-type': 'application/vnd.pypi.simple.v1+json' });
      return void res.end(simpleJson(m[1] as string, byProject.get(m[1] as string) ?? [], origin));
    }
    m = /^\/pypi\/([^/]+)\/json$/.exec(path);
    if (m !== null && byProject.has(m[1] as string)) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(jsonApi(m[1] as string, byProject.get(m[1] as string) ?? [], origin));
    }
    m = /^\/files\/(.+?)(\.metadata)?$/.exec(path);
    const f = m === null ? undefined : files.get(m[1] as string);
    if (f !== undefined) {
      const body = m?.[2] === undefined ? f.bytes : f.metadata;
      if (body !== undefined)
        return void res.writeHead(200, { 'content-length': String(body.length) }).end(body);
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  };
  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: origin,
    requests,
    files,
    override: (path, answer) => (answer === undefined ? overrides.delete(path) : overrides.set(path, answer)),
    async [Symbol.asyncDispose]() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
