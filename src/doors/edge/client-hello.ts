/**
 * Incremental TLS ClientHello reader. It only looks at the bytes: the caller keeps every chunk it
 * pushed and replays them to the backend or the TLS terminator, so nothing is consumed.
 *
 * Post-quantum hellos (an X25519MLKEM768 key share is 1216 bytes) exceed one TCP segment, and
 * RFC 8446 §5.1 lets a client fragment one handshake message over several records, so the reader
 * reassembles records first and handshake bytes second.
 */
import { HOST_LABEL, MAX_HOST_NAME } from './model.ts';

/** What routing and metrics need from a ClientHello. */
export interface ClientHello {
  /** The `server_name` host name, lower-cased, without a trailing dot; absent when not sent. */
  readonly serverName: string | undefined;
  /** ALPN protocol names in the client's order (RFC 7301). */
  readonly alpn: readonly string[];
  /** `supported_versions` (RFC 8446 §4.2.1), or the legacy version alone when absent. */
  readonly versions: readonly number[];
  /** `supported_groups` code points (RFC 8446 §4.2.7), e.g. 0x11ec for X25519MLKEM768. */
  readonly groups: readonly number[];
  /** The record-layer bytes the hello occupied (record headers included). */
  readonly recordBytes: number;
}

/** Why a byte stream is not an acceptable ClientHello; used as a metric label. */
export type HelloFailure =
  | 'not-tls'
  | 'bad-record'
  | 'not-client-hello'
  | 'too-large'
  | 'malformed'
  | 'bad-server-name';

export type HelloState =
  | { readonly state: 'partial' }
  | { readonly state: 'done'; readonly hello: ClientHello }
  | { readonly state: 'failed'; readonly reason: HelloFailure; readonly detail: string };

/** The default cap of 64 KiB over all records of one hello. */
export const MAX_HELLO_BYTES = 64 * 1024;

const RECORD_HEADER = 5;
const HANDSHAKE_HEADER = 4;
const CONTENT_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 1;
// RFC 8446 §5.1: a plaintext fragment is at most 2^14 bytes.
const MAX_FRAGMENT = 16_384;

const EXT_SERVER_NAME = 0x0000;
const EXT_SUPPORTED_GROUPS = 0x000a;
const EXT_ALPN = 0x0010;
const EXT_SUPPORTED_VERSIONS = 0x002b;

const PARTIAL: HelloState = { state: 'partial' };

/** A structural problem inside the hello body. */
class HelloError extends Error {
  readonly reason: HelloFailure;
  constructor(reason: HelloFailure, message: string) {
    super(message);
    this.reason = reason;
  }
}

/**
 * Feeds chunks as they arrive; each push is O(chunk) so a hello sent one byte at a time costs
 * no more than one sent whole. After `done` or `failed` further pushes return the same state.
 */
export class ClientHelloReader {
  readonly #max: number;
  #total = 0;
  readonly #header = Buffer.alloc(RECORD_HEADER);
  #headerFill = 0;
  #recordLeft = 0;
  readonly #handshake: Buffer[] = [];
  #handshakeBytes = 0;
  #handshakeNeed = -1;
  #result: HelloState = PARTIAL;

  constructor(maxBytes: number = MAX_HELLO_BYTES) {
    this.#max = maxBytes;
  }

  /** Bytes pushed so far. */
  get bytes(): number {
    return this.#total;
  }

  push(chunk: Uint8Array): HelloState {
    if (this.#result.state !== 'partial') return this.#result;
    let at = 0;
    while (at < chunk.length && this.#result.state === 'partial') {
      if (this.#recordLeft === 0) at = this.#readHeader(chunk, at);
      else at = this.#readFragment(chunk, at);
    }
    this.#total += at;
    if (this.#result.state === 'partial' && this.#total >= this.#max) {
      this.#fail('too-large', `ClientHello exceeds ${this.#max} bytes`);
    }
    return this.#result;
  }

  #fail(reason: HelloFailure, detail: string): void {
    this.#result = { state: 'failed', reason, detail };
  }

  #readHeader(chunk: Uint8Array, at: number): number {
    const take = Math.min(RECORD_HEADER - this.#headerFill, chunk.length - at);
    this.#header.set(chunk.subarray(at, at + take), this.#headerFill);
    this.#headerFill += take;
    // The first byte alone tells garbage from TLS; fail before waiting for more.
    if (this.#header[0] !== CONTENT_HANDSHAKE) {
      this.#fail('not-tls', `First byte 0x${hex(this.#header[0] ?? 0)} is not a TLS handshake record`);
      return at + take;
    }
    if (this.#headerFill >= 2 && this.#header[1] !== 3) {
      this.#fail('not-tls', `Record version major ${this.#header[1] ?? 0} is not 3`);
      return at + take;
    }
    if (this.#headerFill < RECORD_HEADER) return at + take;
    const length = this.#header.readUInt16BE(3);
    this.#headerFill = 0;
    if (length === 0 || length > MAX_FRAGMENT) {
      this.#fail('bad-record', `Record length ${length} is outside 1..${MAX_FRAGMENT}`);
      return at + take;
    }
    this.#recordLeft = length;
    return at + take;
  }

  #readFragment(chunk: Uint8Array, at: number): number {
    const take = Math.min(this.#recordLeft, chunk.length - at);
    this.#recordLeft -= take;
    const wanted =
      this.#handshakeNeed < 0 ? take : Math.min(take, this.#handshakeNeed - this.#handshakeBytes);
    if (wanted > 0) {
      this.#handshake.push(Buffer.from(chunk.subarray(at, at + wanted)));
      this.#handshakeBytes += wanted;
    }
    if (this.#handshakeNeed < 0 && this.#handshakeBytes >= HANDSHAKE_HEADER) this.#readHandshakeHeader();
    if (this.#result.state !== 'partial') return at + take;
    // When the hello ends inside a record, the rest of that record is not ours to wait for.
    if (this.#handshakeNeed >= 0 && this.#handshakeBytes >= this.#handshakeNeed) this.#finish(at + take);
    return at + take;
  }

  #readHandshakeHeader(): void {
    const head = Buffer.concat(this.#handshake);
    this.#handshake.length = 0;
    this.#handshake.push(head);
    if (head[0] !== HANDSHAKE_CLIENT_HELLO) {
      this.#fail('not-client-hello', `Handshake type ${head[0] ?? 0} is not ClientHello`);
      return;
    }
    const length = head.readUIntBE(1, 3);
    if (length + HANDSHAKE_HEADER > this.#max) {
      this.#fail('too-large', `ClientHello of ${length} bytes exceeds ${this.#max} bytes`);
      return;
    }
    this.#handshakeNeed = length + HANDSHAKE_HEADER;
    if (head.length > this.#handshakeNeed) {
      this.#handshake[0] = head.subarray(0, this.#handshakeNeed);
      this.#handshakeBytes = this.#handshakeNeed;
    }
  }

  #finish(consumedInChunk: number): void {
    const body = Buffer.concat(this.#handshake).subarray(HANDSHAKE_HEADER, this.#handshakeNeed);
    try {
      const parsed = parseClientHelloBody(body);
      this.#result = { state: 'done', hello: { ...parsed, recordBytes: this.#total + consumedInChunk } };
    } catch (error) {
      if (!(error instanceof HelloError)) throw error;
      this.#fail(error.reason, error.message);
    }
  }
}

/** Parses one complete record stream; returns `partial` when the bytes end early. */
export function parseClientHello(bytes: Uint8Array, maxBytes: number = MAX_HELLO_BYTES): HelloState {
  return new ClientHelloReader(maxBytes).push(bytes);
}

function hex(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** A bounds-checked cursor; every overrun is a `malformed` hello. */
class Cursor {
  readonly #buf: Buffer;
  #at: number;
  readonly #end: number;
  constructor(buf: Buffer, start = 0, end = buf.length) {
    this.#buf = buf;
    this.#at = start;
    this.#end = end;
  }
  get left(): number {
    return this.#end - this.#at;
  }
  #need(n: number, what: string): void {
    if (n > this.left) throw new HelloError('malformed', `Truncated ${what}`);
  }
  u8(what: string): number {
    this.#need(1, what);
    return this.#buf[this.#at++] ?? 0;
  }
  u16(what: string): number {
    this.#need(2, what);
    const v = this.#buf.readUInt16BE(this.#at);
    this.#at += 2;
    return v;
  }
  skip(n: number, what: string): void {
    this.#need(n, what);
    this.#at += n;
  }
  /** A sub-cursor over the next `n` bytes, advancing past them. */
  take(n: number, what: string): Cursor {
    this.#need(n, what);
    const sub = new Cursor(this.#buf, this.#at, this.#at + n);
    this.#at += n;
    return sub;
  }
  bytes(n: number, what: string): Buffer {
    this.#need(n, what);
    const out = this.#buf.subarray(this.#at, this.#at + n);
    this.#at += n;
    return out;
  }
}

/** Parses a ClientHello body (after the 4-byte handshake header), RFC 8446 §4.1.2. */
export function parseClientHelloBody(body: Buffer): Omit<ClientHello, 'recordBytes'> {
  const c = new Cursor(body);
  const legacyVersion = c.u16('legacy_version');
  c.skip(32, 'random');
  const sessionId = c.u8('legacy_session_id length');
  if (sessionId > 32) throw new HelloError('malformed', `Session id length ${sessionId} exceeds 32`);
  c.skip(sessionId, 'legacy_session_id');
  const suites = c.u16('cipher_suites length');
  if (suites < 2 || suites % 2 !== 0) throw new HelloError('malformed', `Bad cipher_suites length ${suites}`);
  c.skip(suites, 'cipher_suites');
  const compression = c.u8('legacy_compression_methods length');
  if (compression < 1) throw new HelloError('malformed', 'Empty legacy_compression_methods');
  c.skip(compression, 'legacy_compression_methods');
  const out = { serverName: undefined as string | undefined, alpn: [] as string[], groups: [] as number[] };
  let versions: number[] = [legacyVersion];
  // TLS 1.2 allows a hello without extensions (RFC 5246 §7.4.1.2).
  if (c.left === 0) return { ...out, versions };
  const extensions = c.take(c.u16('extensions length'), 'extensions');
  if (c.left !== 0) throw new HelloError('malformed', `${c.left} trailing bytes after extensions`);
  const seen = new Set<number>();
  while (extensions.left > 0) {
    const type = extensions.u16('extension type');
    const data = extensions.take(extensions.u16('extension length'), 'extension data');
    // RFC 8446 §4.2: at most one extension of each type.
    if (seen.has(type)) throw new HelloError('malformed', `Duplicate extension ${type}`);
    seen.add(type);
    if (type === EXT_SERVER_NAME) out.serverName = readServerName(data);
    else if (type === EXT_ALPN) out.alpn = readAlpn(data);
    else if (type === EXT_SUPPORTED_VERSIONS) versions = readU16List(data, data.u8('versions length'));
    else if (type === EXT_SUPPORTED_GROUPS) out.groups = readU16List(data, data.u16('groups length'));
  }
  return { ...out, versions };
}

function readU16List(c: Cursor, length: number): number[] {
  if (length % 2 !== 0 || length !== c.left) throw new HelloError('malformed', 'Bad list length');
  const out: number[] = [];
  while (c.left > 0) out.push(c.u16('list entry'));
  return out;
}

// The labels and length a route's host may have (model.ts).
const HOST_NAME = new RegExp(`^(?=.{1,${MAX_HOST_NAME}}$)${HOST_LABEL}(?:\\.${HOST_LABEL})*$`);

function readServerName(c: Cursor): string | undefined {
  const list = c.take(c.u16('server_name_list length'), 'server_name_list');
  if (c.left !== 0 || list.left === 0) throw new HelloError('malformed', 'Bad server_name_list length');
  let name: string | undefined;
  while (list.left > 0) {
    const type = list.u8('name_type');
    const value = list.bytes(list.u16('host_name length'), 'host_name');
    // RFC 6066 §3: only one name of each type; host_name is type 0.
    if (type !== 0) continue;
    if (name !== undefined) throw new HelloError('malformed', 'Two host names in server_name');
    name = decodeHostName(value);
  }
  return name;
}

function decodeHostName(value: Buffer): string {
  for (const byte of value) {
    if (byte < 0x21 || byte > 0x7e)
      throw new HelloError('bad-server-name', 'Server name is not printable ASCII');
  }
  let name = value.toString('latin1').toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (!HOST_NAME.test(name)) {
    throw new HelloError('bad-server-name', `Server name "${name.slice(0, 64)}" is not a host name`);
  }
  return name;
}

function readAlpn(c: Cursor): string[] {
  const list = c.take(c.u16('protocol_name_list length'), 'protocol_name_list');
  if (c.left !== 0 || list.left === 0) throw new HelloError('malformed', 'Bad protocol_name_list length');
  const out: string[] = [];
  while (list.left > 0) {
    const length = list.u8('protocol name length');
    if (length === 0) throw new HelloError('malformed', 'Empty ALPN protocol name');
    out.push(list.bytes(length, 'protocol name').toString('latin1'));
  }
  return out;
}
