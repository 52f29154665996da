/**
 * HPACK (RFC 7541) for the HTTP/2 frame relay. Header fields are latin1 strings (one char per
 * octet), so whatever octets a peer sent are re-encoded unchanged. The decoder keeps the dynamic
 * table the peer's encoder drives; the encoder never indexes (literal without indexing, names from
 * the static table), which needs no state kept in step with the peer and is what a relay whose
 * backend connections are shared by many clients can afford.
 */
import { HuffmanError, huffmanDecode, huffmanEncode, huffmanLength } from './huffman.ts';

/** RFC 7541 Appendix A. */
// biome-ignore format: four entries a row, indexes 1-4, 5-8 and so on.
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'],
  [':path', '/index.html'], [':scheme', 'http'], [':scheme', 'https'], [':status', '200'],
  [':status', '204'], [':status', '206'], [':status', '304'], [':status', '400'],
  [':status', '404'], [':status', '500'], ['accept-charset', ''], ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''], ['accept-ranges', ''], ['accept', ''], ['access-control-allow-origin', ''],
  ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''],
  ['date', ''], ['etag', ''], ['expect', ''], ['expires', ''],
  ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''],
  ['link', ''], ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''],
  ['proxy-authorization', ''], ['range', ''], ['referer', ''], ['refresh', ''],
  ['retry-after', ''], ['server', ''], ['set-cookie', ''], ['strict-transport-security', ''],
  ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', ''],
];

/** A header block that cannot be decoded: a connection error COMPRESSION_ERROR (RFC 9113 §4.3). */
export class HpackError extends Error {}

/** RFC 7541 §4.1: an entry's size is its name and value lengths plus 32. */
const ENTRY_OVERHEAD = 32;

/** Decoded fields: names at even indexes, values at odd ones. */
export type FieldList = string[];

/** The decoder's result; `tooLarge` says the list passed the header list size limit (§6.5.2). */
export interface Decoded {
  readonly fields: FieldList;
  readonly tooLarge: boolean;
}

/** RFC 7541 §5.1; returns the value and moves `at`. */
function readInteger(src: Buffer, cursor: { at: number }, end: number, prefixBits: number): number {
  const max = (1 << prefixBits) - 1;
  if (cursor.at >= end) throw new HpackError('Truncated integer');
  let value = (src[cursor.at++] ?? 0) & max;
  if (value < max) return value;
  let shift = 0;
  for (;;) {
    if (cursor.at >= end) throw new HpackError('Truncated integer');
    const byte = src[cursor.at++] ?? 0;
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    // Nothing here is larger than 2^31; longer encodings are an attack on the decoder.
    if (value > 0x7fffffff || shift > 35) throw new HpackError('Integer too large');
    if ((byte & 0x80) === 0) return value;
  }
}

/** The peer's encoder state, mirrored: one per connection and direction. */
export class HpackDecoder {
  /** Newest last. */
  readonly #entries: (readonly [string, string])[] = [];
  #size = 0;
  #max: number;
  /** SETTINGS_HEADER_TABLE_SIZE we announced: the ceiling of any size update (§6.3). */
  readonly #limit: number;

  constructor(tableSize = 4096) {
    this.#max = tableSize;
    this.#limit = tableSize;
  }

  /** Entries in the dynamic table (tests). */
  get dynamicSize(): number {
    return this.#size;
  }

  #evict(room: number): void {
    while (this.#size + room > this.#max && this.#entries.length > 0) {
      const [name, value] = this.#entries.shift() ?? ['', ''];
      this.#size -= name.length + value.length + ENTRY_OVERHEAD;
    }
  }

  #insert(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    this.#evict(size);
    // §4.4: an entry larger than the table empties it and is not added.
    if (size <= this.#max) {
      this.#entries.push([name, value]);
      this.#size += size;
    }
  }

  #field(index: number): readonly [string, string] {
    if (index === 0) throw new HpackError('Index 0');
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1] ?? ['', ''];
    const entry = this.#entries[this.#entries.length - (index - STATIC_TABLE.length)];
    if (entry === undefined) throw new HpackError(`Index ${index} outside the tables`);
    return entry;
  }

  #string(src: Buffer, cursor: { at: number }, end: number): string {
    if (cursor.at >= end) throw new HpackError('Truncated string');
    const huffman = ((src[cursor.at] ?? 0) & 0x80) !== 0;
    const length = readInteger(src, cursor, end, 7);
    const start = cursor.at;
    if (length > end - start) throw new HpackError('String longer than the block');
    cursor.at = start + length;
    if (!huffman) return src.toString('latin1', start, start + length);
    try {
      // Huffman codes are at least 5 bits: the text is at most 8/5 of the code.
      return huffmanDecode(src, start, start + length, Math.ceil((length * 8) / 5));
    } catch (error) {
      if (error instanceof HuffmanError) throw new HpackError(error.message);
      throw error;
    }
  }

  /**
   * Decodes one complete header block. Decoding continues past `maxListSize` (the table must
   * stay in step) but keeps no more fields and reports `tooLarge`.
   */
  decode(src: Buffer, maxListSize: number): Decoded {
    const fields: FieldList = [];
    const cursor = { at: 0 };
    const end = src.length;
    let listSize = 0;
    let tooLarge = false;
    let sawField = false;
    while (cursor.at < end) {
      const byte = src[cursor.at] ?? 0;
      let name: string;
      let value: string;
      if ((byte & 0x80) !== 0) {
        [name, value] = this.#field(readInteger(src, cursor, end, 7));
      } else if ((byte & 0xe0) === 0x20) {
        // §4.2: size updates come first in a block, and never above what SETTINGS allowed.
        if (sawField) throw new HpackError('Dynamic table size update after a field');
        const size = readInteger(src, cursor, end, 5);
        if (size > this.#limit) throw new HpackError(`Dynamic table size ${size} over ${this.#limit}`);
        this.#max = size;
        this.#evict(0);
        continue;
      } else {
        const indexing = (byte & 0xc0) === 0x40;
        const index = readInteger(src, cursor, end, indexing ? 6 : 4);
        name = index === 0 ? this.#string(src, cursor, end) : this.#field(index)[0];
        value = this.#string(src, cursor, end);
        if (indexing) this.#insert(name, value);
      }
      sawField = true;
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      if (listSize > maxListSize) tooLarge = true;
      else fields.push(name, value);
    }
    return { fields, tooLarge };
  }
}

const STATIC_NAMES = new Map<string, number>();
/** Name, then value, to index: a lookup without building a key string per field. */
const STATIC_PAIRS = new Map<string, Map<string, number>>();
STATIC_TABLE.forEach(([name, value], i) => {
  if (!STATIC_NAMES.has(name)) STATIC_NAMES.set(name, i + 1);
  if (value === '') return;
  const values = STATIC_PAIRS.get(name) ?? new Map<string, number>();
  values.set(value, i + 1);
  STATIC_PAIRS.set(name, values);
});

function writeInteger(dst: Buffer, at: number, value: number, prefixBits: number, flags: number): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    dst[at++] = flags | value;
    return at;
  }
  dst[at++] = flags | max;
  let rest = value - max;
  while (rest >= 128) {
    dst[at++] = (rest % 128) | 0x80;
    rest = Math.floor(rest / 128);
  }
  dst[at++] = rest;
  return at;
}

/** Worst-case encoded length of a string of `n` octets (prefix of up to 6 bytes, no Huffman). */
const stringRoom = (n: number) => n + 6;

/** A stateless encoder; `huffman` codes strings when that is shorter. */
export class HpackEncoder {
  readonly #huffman: boolean;
  /** The peer lowered or set its table size: say "size 0" at the start of the next block. */
  #announceZero = true;

  constructor(options: { readonly huffman?: boolean } = {}) {
    this.#huffman = options.huffman ?? false;
  }

  /** The peer's SETTINGS_HEADER_TABLE_SIZE changed (RFC 7541 §4.2). */
  tableSizeChanged(): void {
    this.#announceZero = true;
  }

  #writeString(dst: Buffer, at: number, text: string): number {
    if (this.#huffman) {
      const coded = huffmanLength(text);
      if (coded < text.length) {
        const next = writeInteger(dst, at, coded, 7, 0x80);
        return huffmanEncode(text, dst, next);
      }
    }
    const next = writeInteger(dst, at, text.length, 7, 0);
    return next + dst.write(text, next, 'latin1');
  }

  /**
   * Encodes a field list (names at even indexes) into a new buffer, after `reserve` octets left
   * for the caller (a frame header written in place saves a copy per block).
   */
  encode(fields: FieldList, reserve = 0): Buffer {
    let room = 1 + reserve;
    for (const field of fields) room += stringRoom(field.length);
    const dst = Buffer.allocUnsafe(room);
    let at = reserve;
    if (this.#announceZero) {
      // The encoder never indexes, so a table of size 0 is always right (RFC 7541 §6.3).
      dst[at++] = 0x20;
      this.#announceZero = false;
    }
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i] ?? '';
      const value = fields[i + 1] ?? '';
      const pair = STATIC_PAIRS.get(name)?.get(value);
      if (pair !== undefined) {
        dst[at++] = 0x80 | pair;
        continue;
      }
      const index = STATIC_NAMES.get(name);
      // §6.2.2 literal without indexing; index 0 means a literal name follows.
      if (index === undefined) {
        dst[at++] = 0;
        at = this.#writeString(dst, at, name);
      } else {
        at = writeInteger(dst, at, index, 4, 0);
      }
      at = this.#writeString(dst, at, value);
    }
    return dst.subarray(0, at);
  }
}
