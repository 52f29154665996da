/**
 * A streaming ZIP reader (APPNOTE 6.3.10): finds the end-of-central-directory record, walks the
 * central directory in bounded chunks and inflates one entry at a time with node:zlib, so an
 * OSV export of any size is read with memory bounded by its largest entry. No dependency:
 * this is about 150 lines, and the popular packages buffer whole archives or lack ZIP64.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { createInflateRaw, crc32 } from 'node:zlib';
import { GatewayError } from '#core/errors';

/** One file of the archive, as the central directory describes it. */
export interface ZipEntry {
  readonly name: string;
  readonly method: number;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  readonly localHeaderOffset: number;
}

const SIG = {
  eocd: 0x06054b50,
  locator64: 0x07064b50,
  eocd64: 0x06064b50,
  central: 0x02014b50,
  local: 0x04034b50,
};
const CHUNK = 1 << 20;

function corrupt(file: string, what: string): GatewayError {
  return new GatewayError('GW_ERR_VULNDB_IMPORT_INVALID', {
    message: `Cannot read ZIP archive "${file}": ${what}`,
    details: { file },
  });
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, position);
  return buf.subarray(0, bytesRead);
}

interface Directory {
  readonly offset: number;
  readonly size: number;
  readonly entries: number;
}

async function findDirectory(fh: FileHandle, file: string, size: number): Promise<Directory> {
  // The EOCD is 22 bytes plus a comment of up to 65535 bytes at the very end of the file.
  const tailLength = Math.min(size, 22 + 65_535 + 20);
  const tail = await readAt(fh, size - tailLength, tailLength);
  let at = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === SIG.eocd) {
      at = i;
      break;
    }
  }
  if (at < 0) throw corrupt(file, 'no end-of-central-directory record');
  let entries = tail.readUInt16LE(at + 10);
  let cdSize = tail.readUInt32LE(at + 12);
  let cdOffset = tail.readUInt32LE(at + 16);
  if ((entries === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) && at >= 20) {
    if (tail.readUInt32LE(at - 20) !== SIG.locator64) throw corrupt(file, 'ZIP64 locator missing');
    const eocd64 = await readAt(fh, Number(tail.readBigUInt64LE(at - 12)), 56);
    if (eocd64.length < 56 || eocd64.readUInt32LE(0) !== SIG.eocd64) throw corrupt(file, 'bad ZIP64 record');
    entries = Number(eocd64.readBigUInt64LE(32));
    cdSize = Number(eocd64.readBigUInt64LE(40));
    cdOffset = Number(eocd64.readBigUInt64LE(48));
  }
  if (cdOffset + cdSize > size) throw corrupt(file, 'central directory beyond end of file');
  return { offset: cdOffset, size: cdSize, entries };
}

function zip64Sizes(extra: Buffer, usize: number, csize: number, offset: number) {
  const out = { usize, csize, offset };
  for (let i = 0; i + 4 <= extra.length; ) {
    const id = extra.readUInt16LE(i);
    const len = extra.readUInt16LE(i + 2);
    if (id === 0x0001) {
      let p = i + 4;
      const take = () => {
        const value = p + 8 <= i + 4 + len ? Number(extra.readBigUInt64LE(p)) : undefined;
        p += 8;
        return value;
      };
      // Only the fields whose 32-bit value is saturated appear, in this order (APPNOTE 4.5.3).
      if (usize === 0xffffffff) out.usize = take() ?? usize;
      if (csize === 0xffffffff) out.csize = take() ?? csize;
      if (offset === 0xffffffff) out.offset = take() ?? offset;
    }
    i += 4 + len;
  }
  return out;
}

/** Walks the central directory, reading it in chunks of at most 1 MiB. */
export async function* listZip(fh: FileHandle, file: string): AsyncGenerator<ZipEntry> {
  const { size } = await fh.stat();
  const dir = await findDirectory(fh, file, size);
  let buf: Buffer = Buffer.alloc(0);
  let pos = dir.offset;
  const end = dir.offset + dir.size;
  const need = async (n: number) => {
    while (buf.length < n) {
      if (pos >= end) throw corrupt(file, 'truncated central directory');
      const chunk = await readAt(fh, pos, Math.min(CHUNK, end - pos));
      if (chunk.length === 0) throw corrupt(file, 'truncated central directory');
      pos += chunk.length;
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    }
  };
  for (let i = 0; i < dir.entries; i++) {
    await need(46);
    if (buf.readUInt32LE(0) !== SIG.central) throw corrupt(file, `bad central directory entry ${i}`);
    const flags = buf.readUInt16LE(8);
    const nameLen = buf.readUInt16LE(28);
    const extraLen = buf.readUInt16LE(30);
    const commentLen = buf.readUInt16LE(32);
    await need(46 + nameLen + extraLen + commentLen);
    if ((flags & 1) !== 0) throw corrupt(file, 'encrypted entries are not supported');
    const name = buf.toString('utf8', 46, 46 + nameLen);
    const sizes = zip64Sizes(
      buf.subarray(46 + nameLen, 46 + nameLen + extraLen),
      buf.readUInt32LE(24),
      buf.readUInt32LE(20),
      buf.readUInt32LE(42),
    );
    yield {
      name,
      method: buf.readUInt16LE(10),
      crc32: buf.readUInt32LE(16),
      compressedSize: sizes.csize,
      uncompressedSize: sizes.usize,
      localHeaderOffset: sizes.offset,
    };
    buf = buf.subarray(46 + nameLen + extraLen + commentLen);
  }
}

/** Reads and inflates one entry, refusing more than `maxBytes` (zip bombs) and a CRC mismatch. */
export async function readZipEntry(
  fh: FileHandle,
  file: string,
  entry: ZipEntry,
  maxBytes: number,
): Promise<Buffer> {
  if (entry.uncompressedSize > maxBytes)
    throw corrupt(file, `entry "${entry.name}" is larger than ${maxBytes} bytes`);
  const header = await readAt(fh, entry.localHeaderOffset, 30);
  if (header.length < 30 || header.readUInt32LE(0) !== SIG.local)
    throw corrupt(file, `bad local header of "${entry.name}"`);
  const start = entry.localHeaderOffset + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
  const raw = await readAt(fh, start, entry.compressedSize);
  if (raw.length !== entry.compressedSize) throw corrupt(file, `entry "${entry.name}" is truncated`);
  let data: Buffer;
  if (entry.method === 0) data = raw;
  else if (entry.method === 8) data = await inflate(raw, maxBytes, file, entry.name);
  else throw corrupt(file, `entry "${entry.name}" uses unsupported method ${entry.method}`);
  if (crc32(data) !== entry.crc32) throw corrupt(file, `entry "${entry.name}" fails its CRC-32 check`);
  return data;
}

function inflate(raw: Buffer, maxBytes: number, file: string, name: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const z = createInflateRaw();
    const parts: Buffer[] = [];
    let total = 0;
    z.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (total > maxBytes) {
        z.destroy();
        reject(corrupt(file, `entry "${name}" inflates beyond ${maxBytes} bytes`));
      } else parts.push(chunk);
    });
    z.on('error', (e) => reject(corrupt(file, `entry "${name}" does not inflate (${e.message})`)));
    z.on('end', () => resolve(Buffer.concat(parts)));
    z.end(raw);
  });
}

/** Opens an archive and yields each entry with its inflated bytes, one at a time. */
export async function* readZip(
  file: string,
  options: { readonly maxEntryBytes?: number; readonly filter?: (name: string) => boolean } = {},
): AsyncGenerator<{ readonly entry: ZipEntry; readonly data: Buffer }> {
  const fh = await open(file, 'r');
  try {
    for await (const entry of listZip(fh, file)) {
      if (entry.name.endsWith('/') || (options.filter !== undefined && !options.filter(entry.name))) continue;
      yield { entry, data: await readZipEntry(fh, file, entry, options.maxEntryBytes ?? 64 << 20) };
    }
  } finally {
    await fh.close();
  }
}
