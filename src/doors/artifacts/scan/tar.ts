import { archiveInvalid } from './limits.ts';

/** One tar entry; `body` must be consumed (or skipped) before the next entry. */
export interface TarEntry {
  readonly name: string;
  /** `file`, `dir`, `symlink`, `hardlink` or `other`. */
  readonly type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'other';
  readonly size: number;
  readonly linkName: string;
  readonly body: AsyncIterable<Buffer>;
}

/** A pull reader over a byte stream: exact reads and skips with a small carry-over buffer. */
export class ByteReader {
  readonly #iterator: AsyncIterator<Uint8Array>;
  #buf: Buffer = Buffer.alloc(0);
  #ended = false;
  constructor(source: AsyncIterable<Uint8Array>) {
    this.#iterator = source[Symbol.asyncIterator]();
  }

  async #fill(): Promise<boolean> {
    if (this.#ended) return false;
    const next = await this.#iterator.next();
    if (next.done === true) {
      this.#ended = true;
      return false;
    }
    const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    return true;
  }

  /** Reads exactly `n` bytes, or fewer at end of stream. */
  async read(n: number): Promise<Buffer> {
    while (this.#buf.length < n) if (!(await this.#fill())) break;
    const out = this.#buf.subarray(0, Math.min(n, this.#buf.length));
    this.#buf = this.#buf.subarray(out.length);
    return out;
  }

  /** Yields the next `state.left` bytes as they arrive, counting down `state.left`. */
  async *stream(state: { left: number }): AsyncGenerator<Buffer> {
    while (state.left > 0) {
      if (this.#buf.length === 0 && !(await this.#fill())) throw archiveInvalid('Tar entry is truncated');
      const out = this.#buf.subarray(0, Math.min(state.left, this.#buf.length));
      this.#buf = this.#buf.subarray(out.length);
      state.left -= out.length;
      yield out;
    }
  }
}

function octal(field: Buffer): number {
  // GNU base-256 encoding for sizes of 8 GiB and more (high bit of the first byte set).
  if (((field[0] ?? 0) & 0x80) !== 0) {
    let value = 0;
    for (let i = 1; i < field.length; i += 1) value = value * 256 + (field[i] ?? 0);
    return value;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw archiveInvalid('Tar header has a malformed number');
  return Number.parseInt(text, 8);
}

function text(field: Buffer): string {
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? field.length : end).toString('utf8');
}

function checksumOk(header: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < 512; i += 1) sum += i >= 148 && i < 156 ? 32 : (header[i] ?? 0);
  return sum === octal(header.subarray(148, 156));
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space < 0) break;
    const length = Number(data.subarray(at, space).toString('latin1'));
    if (!Number.isSafeInteger(length) || length <= 0) break;
    const record = data.subarray(space + 1, at + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    at += length;
  }
  return out;
}

const TYPES: Record<string, TarEntry['type']> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '5': 'dir',
  '2': 'symlink',
  '1': 'hardlink',
};

/**
 * Streams the entries of a tar archive (POSIX ustar with pax extended headers and GNU long
 * names, as written by GNU tar, npm pack and docker save). Entry bodies are streamed, never
 * buffered here.
 */
export async function* readTar(source: AsyncIterable<Uint8Array>): AsyncGenerator<TarEntry> {
  const reader = new ByteReader(source);
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax: Record<string, string> = {};
  for (;;) {
    const header = await reader.read(512);
    if (header.length === 0) return;
    if (header.length < 512) throw archiveInvalid('Tar header is truncated');
    if (header.every((b) => b === 0)) return;
    if (!checksumOk(header)) throw archiveInvalid('Tar header checksum mismatch');
    const size = octal(header.subarray(124, 136));
    const flag = String.fromCharCode(header[156] ?? 0);
    const padded = Math.ceil(size / 512) * 512;
    if (flag === 'L' || flag === 'K' || flag === 'x' || flag === 'g') {
      if (size > 1024 * 1024) throw archiveInvalid('Tar extended header is too large');
      const data = await reader.read(padded);
      if (data.length < padded) throw archiveInvalid('Tar entry is truncated');
      const value = data.subarray(0, size);
      if (flag === 'L') longName = text(value);
      else if (flag === 'K') longLink = text(value);
      else if (flag === 'x') pax = { ...pax, ...parsePax(value) };
      continue;
    }
    const prefix = header.subarray(257, 263).toString('latin1').startsWith('ustar')
      ? text(header.subarray(345, 500))
      : '';
    const base = text(header.subarray(0, 100));
    const name = pax['path'] ?? longName ?? (prefix === '' ? base : `${prefix}/${base}`);
    const linkName = pax['linkpath'] ?? longLink ?? text(header.subarray(157, 257));
    const realSize = pax['size'] === undefined ? size : Number(pax['size']);
    longName = undefined;
    longLink = undefined;
    pax = {};
    if (!Number.isSafeInteger(realSize) || realSize < 0)
      throw archiveInvalid('Tar entry has an invalid size');
    const state = { left: realSize };
    yield { name, type: TYPES[flag] ?? 'other', size: realSize, linkName, body: reader.stream(state) };
    // Skip what the consumer did not read (a fresh generator: a consumer that stopped early
    // closed the first), then the padding to the 512-byte block.
    for await (const _ of reader.stream(state)) void _;
    const pad = Math.ceil(realSize / 512) * 512 - realSize;
    if (pad > 0 && (await reader.read(pad)).length < pad) throw archiveInvalid('Tar entry is truncated');
  }
}
