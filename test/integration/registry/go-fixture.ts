/**
 * A fixture Go module proxy in the GOPROXY file layout on 127.0.0.1:0: `@v/list`, `.info`,
 * `.mod`, `.zip` (module zips written here in the zip format of golang.org/x/mod/zip) and
 * `@latest`, plus a checksum database `lookup` endpoint under `/sumdb/test/`.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32 } from 'node:zlib';

export interface GoFixtureVersion {
  readonly version: string;
  readonly time: string;
  /** Files besides go.mod, by path inside the module. */
  readonly files: Readonly<Record<string, string>>;
  /** Makes the checksum database publish a hash that does not match the zip. */
  readonly wrongSum?: boolean;
}

export interface GoUpstream extends AsyncDisposable {
  readonly url: string;
  readonly requests: string[];
  /** The `go.sum` lines the checksum database publishes. */
  readonly sums: Map<string, string>;
  /** Module paths answered with 429. */
  readonly limited: Set<string>;
}

const escape = (s: string) => s.replace(/[A-Z]/g, (c) => `!${c.toLowerCase()}`);

function header(
  sig: number,
  size: number,
  at: number,
  crc: number,
  length: number,
  nameLength: number,
): Buffer {
  const b = Buffer.alloc(size);
  b.writeUInt32LE(sig, 0);
  b.writeUInt16LE(20, at);
  b.writeUInt16LE(0x0800, at + 2);
  b.writeUInt32LE(crc, at + 10);
  b.writeUInt32LE(length, at + 14);
  b.writeUInt32LE(length, at + 18);
  b.writeUInt16LE(nameLength, at + 22);
  return b;
}

/** A stored (method 0) zip archive: local headers, central directory, end record (APPNOTE 4.3). */
export function writeZip(files: readonly { name: string; data: Buffer }[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const f of files) {
    const name = Buffer.from(f.name);
    const crc = crc32(f.data);
    // The local header and the central entry share the version/flags/CRC/sizes/name-length run.
    const local = header(0x04034b50, 30, 4, crc, f.data.length, name.length);
    const central = header(0x02014b50, 46, 6, crc, f.data.length, name.length);
    central.writeUInt16LE(20, 4);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, f.data);
    centrals.push(central, name);
    offset += 30 + name.length + f.data.length;
  }
  const dir = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.length, 8);
  end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(dir.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, dir, end]);
}

/** dirhash Hash1, written independently of the door's implementation. */
function h1(files: readonly { name: string; data: Buffer }[]): string {
  const lines = [...files]
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((f) => `${createHash('sha256').update(f.data).digest('hex')}  ${f.name}\n`)
    .join('');
  return `h1:${createHash('sha256').update(lines).digest('base64')}`;
}

interface Built {
  readonly info: string;
  readonly mod: Buffer;
  readonly zip: Buffer;
}

export async function startGoUpstream(
  modules: Readonly<Record<string, readonly GoFixtureVersion[]>>,
): Promise<GoUpstream> {
  const files = new Map<string, Buffer | string>();
  const sums = new Map<string, string>();
  const lookups = new Map<string, string>();
  for (const [path, versions] of Object.entries(modules)) {
    const esc = escape(path);
    files.set(`/${esc}/@v/list`, versions.map((v) => `${v.version}\n`).join(''));
    for (const v of versions) {
      const mod = Buffer.from(`module ${path}\n\ngo 1.19\n`);
      const entries = [
        { name: `${path}@${v.version}/go.mod`, data: mod },
        ...Object.entries(v.files).map(([n, c]) => ({
          name: `${path}@${v.version}/${n}`,
          data: Buffer.from(c),
        })),
      ];
      const built: Built = {
        info: JSON.stringify({ Version: v.version, Time: v.time }),
        mod,
        zip: writeZip(entries),
      };
      const base = `/${esc}/@v/${escape(v.version)}`;
      files.set(`${base}.info`, built.info);
      files.set(`${base}.mod`, built.mod);
      files.set(`${base}.zip`, built.zip);
      const zipSum = v.wrongSum === true ? h1([{ name: 'x', data: Buffer.from('x') }]) : h1(entries);
      const modSum = h1([{ name: 'go.mod', data: mod }]);
      sums.set(`${path} ${v.version}`, zipSum);
      sums.set(`${path} ${v.version}/go.mod`, modSum);
      lookups.set(
        `/sumdb/test/lookup/${esc}@${escape(v.version)}`,
        `1\n${path} ${v.version} ${zipSum}\n${path} ${v.version}/go.mod ${modSum}\n\ngo.sum database tree\n1\nAAAA\n`,
      );
    }
  }
  const requests: string[] = [];
  const limited = new Set<string>();
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    requests.push(`${req.method} ${path}`);
    if ([...limited].some((m) => path.startsWith(`/${escape(m)}/`))) {
      res.writeHead(429, { 'retry-after': '7', 'content-type': 'text/plain' }).end('slow down\n');
      return;
    }
    const body = files.get(path) ?? lookups.get(path);
    if (body === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body);
  };
  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    sums,
    limited,
    async [Symbol.asyncDispose]() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
