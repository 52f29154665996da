/**
 * A fixture Go module proxy in the GOPROXY file layout on 127.0.0.1:0: `@v/list`, `.info`,
 * `.mod`, `.zip` (module zips written here in the zip format of golang.org/x/mod/zip) and
 * `@latest`, plus a checksum database under `/sumdb/test/` (`lookup`, hash tiles, `latest`).
 */
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32 } from 'node:zlib';
import { merkleTreeHash } from '#testing/merkle';

export interface GoFixtureVersion {
  readonly version: string;
  readonly time: string;
  /** Files besides go.mod, by path inside the module. */
  readonly files: Readonly<Record<string, string>>;
  /** Makes the checksum database publish a hash that does not match the zip. */
  readonly wrongSum?: boolean;
  /**
   * Makes the lookup answer a record other than the one in the signed tree (a lying proxy of
   * the checksum database): its lines name a hash that does match the zip.
   */
  readonly forgedLookup?: boolean;
  /** Left out of `@v/list` until `reveal` (its files are served all along). */
  readonly hidden?: boolean;
  /** The go.mod text; default `module <path>` with `go 1.19`. */
  readonly goMod?: string;
}

export interface GoUpstream extends AsyncDisposable {
  readonly url: string;
  readonly requests: string[];
  /** The `go.sum` lines the checksum database publishes. */
  readonly sums: Map<string, string>;
  /** Module paths answered with 429. */
  readonly limited: Set<string>;
  /** The checksum database's verifier key (`<name>+<hash>+<key>`, as GOSUMDB takes it). */
  readonly sumdbKey: string;
  /**
   * Makes the checksum database show another history of the same size (record 0 changed, signed
   * by the same key, every other record still provable): a fork a client must detect.
   */
  fork(on: boolean): void;
  /**
   * Damages the checksum database's answers: `tiles` cuts the last byte off every hash tile,
   * `latest` changes the tree size of the signed tree head without signing it again.
   */
  damage(what: 'tiles' | 'latest' | undefined): void;
  /** Adds a module's hidden versions to its `@v/list`, as a new tag shows up upstream. */
  reveal(module: string): void;
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

const sha = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();

/**
 * A checksum database log (go.dev/design/25530-sumdb) over `records`: lookups answer the record,
 * a blank line and a tree head signed with a fresh Ed25519 key; `tile/8/L/N[.p/W]` serves hashes.
 */
function sumdbLog(records: readonly string[], name: string, keys = generateKeyPairSync('ed25519')) {
  const { publicKey, privateKey } = keys;
  const keyBytes = Buffer.concat([
    Buffer.of(1),
    (publicKey.export({ format: 'der', type: 'spki' }) as Buffer).subarray(12),
  ]);
  const keyHash = sha(Buffer.from(`${name}\n`), keyBytes).readUInt32BE(0);
  const leaves = records.map((r) => sha(Buffer.of(0), Buffer.from(r)));
  const text = `go.sum database tree\n${records.length}\n${merkleTreeHash(leaves).toString('base64')}\n`;
  const sig = Buffer.alloc(4);
  sig.writeUInt32BE(keyHash, 0);
  const signature = Buffer.concat([sig, sign(null, Buffer.from(text), privateKey)]).toString('base64');
  const tile = (path: string): Buffer | undefined => {
    const m = /^tile\/8\/(\d+)\/((?:x\d{3}\/)*\d{3})(?:\.p\/(\d+))?$/.exec(path);
    if (m === null) return undefined;
    const level = Number(m[1]);
    const index = Number((m[2] as string).replace(/x|\//g, ''));
    const width = m[3] === undefined ? 256 : Number(m[3]);
    const block = 256 ** level;
    if ((index * 256 + width) * block > leaves.length) return undefined;
    const out: Buffer[] = [];
    for (let i = index * 256; i < index * 256 + width; i++)
      out.push(merkleTreeHash(leaves.slice(i * block, (i + 1) * block)));
    return Buffer.concat(out);
  };
  return {
    key: `${name}+${keyHash.toString(16).padStart(8, '0')}+${keyBytes.toString('base64')}`,
    note: `${text}\n\u2014 ${name} ${signature}\n`,
    tile,
    keys,
  };
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
  const records: string[] = [];
  for (const [path, versions] of Object.entries(modules)) {
    const esc = escape(path);
    files.set(
      `/${esc}/@v/list`,
      versions
        .filter((v) => v.hidden !== true)
        .map((v) => `${v.version}\n`)
        .join(''),
    );
    for (const v of versions) {
      const mod = Buffer.from(v.goMod ?? `module ${path}\n\ngo 1.19\n`);
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
      const zipSum =
        v.wrongSum === true || v.forgedLookup === true
          ? h1([{ name: 'x', data: Buffer.from('x') }])
          : h1(entries);
      const modSum = h1([{ name: 'go.mod', data: mod }]);
      sums.set(`${path} ${v.version}`, zipSum);
      sums.set(`${path} ${v.version}/go.mod`, modSum);
      const record = `${path} ${v.version} ${zipSum}\n${path} ${v.version}/go.mod ${modSum}\n`;
      const answered = v.forgedLookup === true ? record.replace(zipSum, h1(entries)) : record;
      lookups.set(`/sumdb/test/lookup/${esc}@${escape(v.version)}`, `${records.length}\n${answered}\n`);
      records.push(record);
    }
  }
  const honest = sumdbLog(records, 'sum.example.test');
  const forked = sumdbLog(
    records.map((r, i) =>
      i === 0 ? r.replace(/h1:\S+/, h1([{ name: 'evil', data: Buffer.from('evil') }])) : r,
    ),
    'sum.example.test',
    honest.keys,
  );
  let log = honest;
  let damaged: 'tiles' | 'latest' | undefined;
  const requests: string[] = [];
  const limited = new Set<string>();
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    requests.push(`${req.method} ${path}`);
    if ([...limited].some((m) => path.startsWith(`/${escape(m)}/`))) {
      res.writeHead(429, { 'retry-after': '7', 'content-type': 'text/plain' }).end('slow down\n');
      return;
    }
    const tile = path.startsWith('/sumdb/test/') ? log.tile(path.slice('/sumdb/test/'.length)) : undefined;
    const latest =
      damaged === 'latest'
        ? log.note.replace(/^(go\.sum database tree\n)(\d+)/, (_, t, n) => `${t}${Number(n) + 1}`)
        : log.note;
    const body =
      files.get(path) ??
      (lookups.has(path) ? `${lookups.get(path)}${log.note}` : undefined) ??
      (path === '/sumdb/test/latest' ? latest : undefined) ??
      (damaged === 'tiles' ? tile?.subarray(0, -1) : tile);
    if (body === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    // With its length, as a file server answers a GET and a HEAD.
    res
      .writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(Buffer.byteLength(body)),
      })
      .end(body);
  };
  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    sums,
    limited,
    sumdbKey: honest.key,
    fork(on) {
      log = on ? forked : honest;
    },
    damage(what) {
      damaged = what;
    },
    reveal(module) {
      const versions = modules[module] ?? [];
      files.set(`/${escape(module)}/@v/list`, versions.map((v) => `${v.version}\n`).join(''));
    },
    async [Symbol.asyncDispose]() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
