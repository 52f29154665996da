import { crc32, deflateRawSync, gzipSync } from 'node:zlib';
import type { ScanTarget } from './port.ts';
import { bufferAccess } from './zip.ts';

/**
 * Builders of real archive formats for the scanner's tests and the benchmark: POSIX ustar
 * (with pax headers for long names), ZIP (APPNOTE, stored or deflated) and gzip.
 */

/** One file of a fixture archive. */
export interface FixtureFile {
  readonly name: string;
  readonly data: Buffer | string;
}

function tarHeader(name: string, size: number, type = '0'): Buffer {
  const h = Buffer.alloc(512);
  h.write(name.slice(0, 100), 0, 'utf8');
  h.write('0000644\0', 100, 'latin1');
  h.write('0000000\0', 108, 'latin1');
  h.write('0000000\0', 116, 'latin1');
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  h.write(
    `${Math.floor(Date.now() / 1000)
      .toString(8)
      .padStart(11, '0')}\0`,
    136,
    'latin1',
  );
  h.write('        ', 148, 'latin1');
  h.write(type, 156, 'latin1');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

function pad(data: Buffer): Buffer {
  const rest = data.length % 512;
  return rest === 0 ? data : Buffer.concat([data, Buffer.alloc(512 - rest)]);
}

/** A ustar archive; names over 100 bytes get a pax `path` record. */
export function makeTar(files: readonly FixtureFile[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    const data = Buffer.isBuffer(f.data) ? f.data : Buffer.from(f.data);
    if (Buffer.byteLength(f.name) > 100) {
      const body = ` path=${f.name}\n`;
      let len = body.length;
      while (`${len}${body}`.length !== len) len = `${len}${body}`.length;
      const record = Buffer.from(`${len}${body}`);
      parts.push(tarHeader('PaxHeader', record.length, 'x'), pad(record));
    }
    parts.push(tarHeader(f.name, data.length), pad(data));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** A gzip-compressed tar (`.tgz`). */
export function makeTgz(files: readonly FixtureFile[]): Buffer {
  return gzipSync(makeTar(files));
}

/** A ZIP archive (no data descriptors), deflated unless `stored`. */
export function makeZip(files: readonly FixtureFile[], options: { readonly stored?: boolean } = {}): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const f of files) {
    const data = Buffer.isBuffer(f.data) ? f.data : Buffer.from(f.data);
    const name = Buffer.from(f.name);
    const body = options.stored === true ? data : deflateRawSync(data);
    const method = options.stored === true ? 0 : 8;
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, body);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(0x0800, 8);
    c.writeUInt16LE(method, 10);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(body.length, 20);
    c.writeUInt32LE(data.length, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE(offset, 42);
    central.push(c, name);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.length, 8);
  end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** A scan target over a buffer, streamed in 64 KiB chunks. */
export function bufferTarget(fileName: string, data: Buffer): ScanTarget {
  return {
    id: 'a1',
    name: fileName,
    version: '1',
    fileName,
    sha256: '0'.repeat(64),
    size: data.length,
    access: bufferAccess(data),
    open: async () =>
      (async function* () {
        for (let i = 0; i < data.length; i += 65_536) yield data.subarray(i, i + 65_536);
      })(),
  };
}
