import { createInflateRaw } from 'node:zlib';
import type { GatewayError } from '#core/errors';
import { throughZlib } from './inflate.ts';
import { archiveInvalid, archiveLimit, type ScanBudget } from './limits.ts';

/** Random access to bytes: a buffer, or an encrypted artifact read by range. */
export interface RandomAccess {
  readonly size: number;
  /** Reads the inclusive range `start..end`. */
  read(start: number, end: number): Promise<Buffer>;
}

/** A buffer as RandomAccess. */
export function bufferAccess(buf: Buffer): RandomAccess {
  return { size: buf.length, read: async (start, end) => buf.subarray(start, end + 1) };
}

/** One entry of a ZIP central directory. */
export interface ZipItem {
  readonly name: string;
  readonly method: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localOffset: number;
  readonly isDirectory: boolean;
}

const EOCD = 0x06054b50;
const EOCD64 = 0x06064b50;
const LOCATOR64 = 0x07064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

/** True when the bytes start like a ZIP archive (a local header or an empty archive). */
export function looksLikeZip(head: Buffer): boolean {
  return head.length >= 4 && (head.readUInt32LE(0) === LOCAL || head.readUInt32LE(0) === EOCD);
}

function zip64Extra(extra: Buffer, item: { size: number; compressedSize: number; localOffset: number }) {
  let at = 0;
  while (at + 4 <= extra.length) {
    const id = extra.readUInt16LE(at);
    const len = extra.readUInt16LE(at + 2);
    if (id === 0x0001) {
      let p = at + 4;
      const next = () => {
        const v = Number(extra.readBigUInt64LE(p));
        p += 8;
        return v;
      };
      if (item.size === 0xffffffff) item.size = next();
      if (item.compressedSize === 0xffffffff) item.compressedSize = next();
      if (item.localOffset === 0xffffffff) item.localOffset = next();
    }
    at += 4 + len;
  }
}

/** Reads the central directory (APPNOTE 4.3.16, with ZIP64 records) of an archive. */
export async function listZipItems(access: RandomAccess): Promise<ZipItem[]> {
  const tailSize = Math.min(access.size, 65_557);
  if (tailSize < 22) throw archiveInvalid('ZIP archive is too short');
  const tail = await access.read(access.size - tailSize, access.size - 1);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i -= 1) {
    if (tail.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw archiveInvalid('ZIP end of central directory not found');
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (
    (cdOffset === 0xffffffff || count === 0xffff) &&
    eocd >= 20 &&
    tail.readUInt32LE(eocd - 20) === LOCATOR64
  ) {
    const at = Number(tail.readBigUInt64LE(eocd - 12));
    const rec = await access.read(at, at + 55);
    if (rec.readUInt32LE(0) !== EOCD64) throw archiveInvalid('ZIP64 end record not found');
    count = Number(rec.readBigUInt64LE(32));
    cdSize = Number(rec.readBigUInt64LE(40));
    cdOffset = Number(rec.readBigUInt64LE(48));
  }
  if (cdOffset + cdSize > access.size) throw archiveInvalid('ZIP central directory lies outside the archive');
  const cd = await access.read(cdOffset, cdOffset + cdSize - 1);
  const items: ZipItem[] = [];
  let at = 0;
  for (let i = 0; i < count; i += 1) {
    if (at + 46 > cd.length || cd.readUInt32LE(at) !== CENTRAL)
      throw archiveInvalid('ZIP central directory is corrupt');
    const nameLen = cd.readUInt16LE(at + 28);
    const extraLen = cd.readUInt16LE(at + 30);
    const commentLen = cd.readUInt16LE(at + 32);
    const name = cd.subarray(at + 46, at + 46 + nameLen).toString('utf8');
    const item = {
      size: cd.readUInt32LE(at + 24),
      compressedSize: cd.readUInt32LE(at + 20),
      localOffset: cd.readUInt32LE(at + 42),
    };
    zip64Extra(cd.subarray(at + 46 + nameLen, at + 46 + nameLen + extraLen), item);
    items.push({ name, method: cd.readUInt16LE(at + 10), ...item, isDirectory: name.endsWith('/') });
    at += 46 + nameLen + extraLen + commentLen;
  }
  return items;
}

function beyondDeclared(item: ZipItem, path: string): GatewayError {
  return archiveLimit(`ZIP entry "${item.name}" expands beyond its declared ${item.size} bytes`, {
    path,
    limit: 'declaredSize',
  });
}

/**
 * Streams one entry's bytes, inflating with node:zlib. The central directory's sizes were counted
 * (and ratio-checked) before any entry is read, so an entry may not yield more than its declared
 * size: a lying header is an archive bomb. The expansion ratio is checked on the inflated bytes
 * too, so a zip bomb costs only what it is allowed.
 */
export async function* openZipItem(
  access: RandomAccess,
  item: ZipItem,
  budget: ScanBudget,
  path: string,
): AsyncGenerator<Buffer> {
  const local = await access.read(item.localOffset, item.localOffset + 29);
  if (local.length < 30 || local.readUInt32LE(0) !== LOCAL)
    throw archiveInvalid(`ZIP entry "${item.name}" has no local header`);
  const start = item.localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
  if (start + item.compressedSize > access.size)
    throw archiveInvalid(`ZIP entry "${item.name}" lies outside the archive`);
  const chunk = 1024 * 1024;
  async function* raw(): AsyncGenerator<Buffer> {
    for (let at = 0; at < item.compressedSize; at += chunk) {
      yield await access.read(start + at, start + Math.min(at + chunk, item.compressedSize) - 1);
    }
  }
  if (item.method === 0) {
    if (item.compressedSize > item.size) throw beyondDeclared(item, path);
    yield* raw();
    return;
  }
  if (item.method !== 8)
    throw archiveInvalid(`ZIP entry "${item.name}" uses unsupported method ${item.method}`);
  try {
    yield* throughZlib(createInflateRaw(), raw(), (_, expanded) => {
      if (expanded > item.size) throw beyondDeclared(item, path);
      budget.ratio(item.compressedSize, expanded, path);
    });
  } catch (error) {
    if ((error as { code?: string }).code?.startsWith('GW_ERR_') === true) throw error;
    throw archiveInvalid(`ZIP entry "${item.name}" does not inflate`, { path });
  }
}

/**
 * Checks one entry the walk does not parse: a stored entry by its sizes, a deflated one by
 * inflating it (and throwing the bytes away), so its declared size is not taken on trust.
 * Entries of other methods cannot be inflated here and are judged by their declared sizes.
 */
export async function verifyZipItem(
  access: RandomAccess,
  item: ZipItem,
  budget: ScanBudget,
  path: string,
): Promise<void> {
  if (item.method === 0) {
    if (item.compressedSize > item.size) throw beyondDeclared(item, path);
    return;
  }
  if (item.method !== 8) return;
  for await (const piece of openZipItem(access, item, budget, path)) void piece;
}
