/**
 * A fixture Maven 2 repository on 127.0.0.1:0: POMs (with `Last-Modified`), jars written here
 * as zip archives with a manifest, `.md5`/`.sha1` sidecars and artifact-level
 * `maven-metadata.xml`; plus raw documents (an XML bomb) served as given.
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeZip } from './go-fixture.ts';

export interface MavenFixtureVersion {
  readonly version: string;
  readonly publishedAt: number;
  readonly dependencies?: readonly { groupId: string; artifactId: string; version: string }[];
  /** Serve a jar whose bytes differ from its sidecars. */
  readonly corruptJar?: boolean;
}

export interface MavenUpstream extends AsyncDisposable {
  readonly url: string;
  readonly requests: string[];
  /** Extra paths served verbatim. */
  readonly raw: Map<string, string | Buffer>;
  /** Path prefixes answered with 429 and `Retry-After: 7`, as a rate-limiting repository does. */
  readonly limited: Set<string>;
  /** `Last-Modified` by path (epoch ms), for raw paths and to override a file's. */
  readonly modified: Map<string, number>;
}

const pom = (g: string, a: string, v: MavenFixtureVersion) =>
  `<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>${g}</groupId>
  <artifactId>${a}</artifactId>
  <version>${v.version}</version>
  <packaging>jar</packaging>
  <dependencies>
${(v.dependencies ?? []).map((d) => `    <dependency><groupId>${d.groupId}</groupId><artifactId>${d.artifactId}</artifactId><version>${d.version}</version></dependency>`).join('\n')}
  </dependencies>
</project>
`;

export async function startMavenUpstream(
  artifacts: Readonly<Record<string, readonly MavenFixtureVersion[]>>,
): Promise<MavenUpstream> {
  const files = new Map<string, { body: Buffer; lastModified?: number }>();
  const put = (path: string, body: Buffer, lastModified?: number) => {
    files.set(path, { body, ...(lastModified === undefined ? {} : { lastModified }) });
    for (const alg of ['md5', 'sha1'] as const)
      files.set(`${path}.${alg}`, { body: Buffer.from(createHash(alg).update(body).digest('hex')) });
  };
  for (const [ga, versions] of Object.entries(artifacts)) {
    const [g, a] = ga.split(':') as [string, string];
    const base = `/${g.replace(/\./g, '/')}/${a}`;
    for (const v of versions) {
      put(`${base}/${v.version}/${a}-${v.version}.pom`, Buffer.from(pom(g, a, v)), v.publishedAt);
      const manifest = Buffer.from(
        `Manifest-Version: 1.0\r\nImplementation-Title: ${ga}:${v.version}\r\n\r\n`,
      );
      const jar = writeZip([{ name: 'META-INF/MANIFEST.MF', data: manifest }]);
      put(`${base}/${v.version}/${a}-${v.version}.jar`, jar, v.publishedAt);
      if (v.corruptJar === true)
        files.set(`${base}/${v.version}/${a}-${v.version}.jar`, {
          body: Buffer.concat([jar, Buffer.from('x')]),
        });
    }
    const list = versions.map((v) => `      <version>${v.version}</version>`).join('\n');
    put(
      `${base}/maven-metadata.xml`,
      Buffer.from(
        `<?xml version="1.0" encoding="UTF-8"?>\n<metadata>\n  <groupId>${g}</groupId>\n  <artifactId>${a}</artifactId>\n  <versioning>\n    <latest>${versions.at(-1)?.version}</latest>\n    <release>${versions.at(-1)?.version}</release>\n    <versions>\n${list}\n    </versions>\n    <lastUpdated>20260101000000</lastUpdated>\n  </versioning>\n</metadata>\n`,
      ),
    );
  }
  const requests: string[] = [];
  const raw = new Map<string, string | Buffer>();
  const limited = new Set<string>();
  const modified = new Map<string, number>();
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    requests.push(`${req.method} ${path}`);
    if ([...limited].some((prefix) => path.startsWith(prefix))) {
      res.writeHead(429, { 'retry-after': '7', 'content-type': 'text/plain' }).end('Too Many Requests\n');
      return;
    }
    const extra = raw.get(path);
    const f = extra === undefined ? files.get(path) : { body: Buffer.from(extra) };
    if (f === undefined) {
      res.writeHead(404).end();
      return;
    }
    const headers: Record<string, string> = { 'content-length': String(f.body.length) };
    const lastModified = modified.get(path) ?? ('lastModified' in f ? f.lastModified : undefined);
    if (lastModified !== undefined) headers['last-modified'] = new Date(lastModified).toUTCString();
    res.writeHead(200, headers).end(req.method === 'HEAD' ? undefined : f.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    raw,
    limited,
    modified,
    async [Symbol.asyncDispose]() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
