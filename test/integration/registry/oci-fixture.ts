/**
 * A real upstream for the OCI tests: Debian's `docker-registry` (CNCF distribution) with token
 * authentication, a tiny token realm issuing ES256 JWTs whose `x5c` certificate the registry
 * trusts, and OCI image layouts built here (tar layers, config, manifest) that skopeo pushes.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { importPKCS8, SignJWT } from 'jose';

const run = promisify(execFile);
export const USER = 'puller';
export const PASSWORD = 'pull-secret';
const ISSUER = 'gatehouse-test-realm';
const SERVICE = 'fixture-registry';

export interface OciUpstream extends AsyncDisposable {
  /** Registry base URL (`http://127.0.0.1:<port>`). */
  readonly url: string;
  readonly host: string;
  /** Token requests the realm answered, by scope. */
  readonly tokenRequests: string[];
  /**
   * Pushes an image; `layerMediaType` makes it an artifact of that layer type instead (a cosign
   * signature: `application/vnd.dev.cosign.simplesigning.v1+json`), `created` may be left out.
   */
  push(
    repo: string,
    tag: string,
    options: { created?: string; content: string; layerMediaType?: string },
  ): Promise<string>;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A POSIX ustar archive with one regular file. */
function tar(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${content.length.toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const pad = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, pad, Buffer.alloc(1024)]);
}

async function layout(
  dir: string,
  tag: string,
  options: { created?: string; content: string; layerMediaType?: string },
): Promise<string> {
  const { created, content, layerMediaType } = options;
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const blob = async (b: Buffer) => {
    await writeFile(join(dir, 'blobs', 'sha256', sha(b)), b);
    return { digest: `sha256:${sha(b)}`, size: b.length };
  };
  const raw = tar('hello.txt', Buffer.from(content));
  const layer = await blob(layerMediaType === undefined ? gzipSync(raw) : Buffer.from(content));
  const config = await blob(
    Buffer.from(
      JSON.stringify({
        ...(created === undefined ? {} : { created }),
        architecture: 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: [`sha256:${sha(raw)}`] },
        config: {},
      }),
    ),
  );
  const manifest = await blob(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: layerMediaType ?? 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
      }),
    ),
  );
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          annotations: { 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
  return manifest.digest;
}

async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function realm(
  work: string,
  tokenRequests: string[],
): Promise<{ server: Server; url: string; cert: string }> {
  const key = join(work, 'realm-key.pem');
  const cert = join(work, 'realm-cert.pem');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-subj',
    '/CN=gatehouse-test-realm',
    '-days',
    '2',
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  const pem = await readFile(cert, 'utf8');
  const der = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  const signingKey = await importPKCS8(await readFile(key, 'utf8'), 'ES256');
  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://realm');
      const scope = url.searchParams.get('scope') ?? '';
      tokenRequests.push(scope);
      const expected = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
      if (req.headers.authorization !== expected) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
        return;
      }
      const [, name = '', actions = 'pull'] = scope.split(':');
      const token = await new SignJWT({
        access: scope === '' ? [] : [{ type: 'repository', name, actions: actions.split(',') }],
      })
        .setProtectedHeader({ alg: 'ES256', x5c: [der] })
        .setIssuer(ISSUER)
        .setSubject(USER)
        .setAudience(url.searchParams.get('service') ?? '')
        .setIssuedAt()
        .setNotBefore(Math.floor(Date.now() / 1000) - 60)
        .setExpirationTime('5m')
        .setJti(randomUUID())
        .sign(signingKey);
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ token, expires_in: 300 }));
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`, cert };
}

/** Starts the token realm and docker-registry; resolves when the registry answers `/v2/`. */
export async function startOciUpstream(work: string): Promise<OciUpstream> {
  const tokenRequests: string[] = [];
  const r = await realm(work, tokenRequests);
  const port = await freePort();
  const config = join(work, 'registry.yml');
  await writeFile(
    config,
    `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(work, 'storage')}\nhttp:\n  addr: 127.0.0.1:${port}\nauth:\n  token:\n    realm: ${r.url}\n    service: ${SERVICE}\n    issuer: ${ISSUER}\n    rootcertbundle: ${r.cert}\n`,
  );
  const child: ChildProcess = spawn('/usr/bin/docker-registry', ['serve', config], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  let ready = false;
  for (let i = 0; i < 200 && !ready; i++) {
    ready = await fetch(`${url}/v2/`).then(
      (res) => res.status === 401,
      () => false,
    );
    if (!ready) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (!ready) throw new Error('docker-registry did not start');
  let n = 0;
  return {
    url,
    host: `127.0.0.1:${port}`,
    tokenRequests,
    async push(repo, tag, options) {
      const dir = join(work, `layout-${n++}`);
      const digest = await layout(dir, tag, options);
      await run('skopeo', [
        'copy',
        '--insecure-policy',
        '--dest-tls-verify=false',
        '--dest-creds',
        `${USER}:${PASSWORD}`,
        `oci:${dir}:${tag}`,
        `docker://127.0.0.1:${port}/${repo}:${tag}`,
      ]);
      return digest;
    },
    async [Symbol.asyncDispose]() {
      child.kill('SIGTERM');
      r.server.closeAllConnections();
      await new Promise<void>((resolve) => r.server.close(() => resolve()));
    },
  };
}
