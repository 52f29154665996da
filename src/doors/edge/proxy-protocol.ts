/**
 * PROXY protocol v1 and v2 (HAProxy's proxy-protocol.txt, 2020 revision): a parser that works on
 * a growing buffer and never guesses (a header is complete and valid, incomplete, or invalid), and
 * a v2 writer. No core imports: this module is a pure codec.
 */
import { crc32c } from './crc32c.ts';
import { formatIp, parseIp } from './ip.ts';

/** One endpoint of the proxied connection. */
export interface ProxyAddress {
  readonly address: string;
  readonly port: number;
}

/** A v2 type-length-value field. */
export interface ProxyTlv {
  readonly type: number;
  readonly value: Buffer;
}

export type ProxyFamily = 'tcp4' | 'tcp6' | 'udp4' | 'udp6' | 'unix' | 'unspec';

/** A parsed header. `source` is set only for TCP/UDP over IPv4/IPv6 with the PROXY command. */
export interface ProxyHeader {
  readonly version: 1 | 2;
  /** `local` (v2 LOCAL: health checks from the proxy itself) means "use the socket's own address". */
  readonly command: 'proxy' | 'local';
  readonly family: ProxyFamily;
  readonly source?: ProxyAddress;
  readonly destination?: ProxyAddress;
  readonly tlvs: readonly ProxyTlv[];
  /** PP2_TYPE_AUTHORITY: the host name the client asked for (the SNI). */
  readonly authority?: string;
  /** PP2_TYPE_ALPN. */
  readonly alpn?: string;
  /** Length of the whole header in bytes. */
  readonly length: number;
}

export type ProxyFailure =
  | 'not-proxy'
  | 'bad-v1'
  | 'bad-version'
  | 'bad-command'
  | 'bad-family'
  | 'bad-address'
  | 'bad-tlv'
  | 'bad-crc'
  | 'too-large';

export type ProxyParse =
  | { readonly state: 'partial' }
  | { readonly state: 'done'; readonly header: ProxyHeader }
  | { readonly state: 'failed'; readonly reason: ProxyFailure; readonly detail: string };

/** The 12-byte v2 signature. */
export const V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
// Spec §2.1: a v1 line is at most 107 bytes including CRLF.
const V1_MAX = 107;
const V2_HEADER = 16;

export const PP2_TYPE = {
  ALPN: 0x01,
  AUTHORITY: 0x02,
  CRC32C: 0x03,
  NOOP: 0x04,
  UNIQUE_ID: 0x05,
  SSL: 0x20,
  NETNS: 0x30,
} as const;

const PARTIAL: ProxyParse = { state: 'partial' };

const fail = (reason: ProxyFailure, detail: string): ProxyParse => ({ state: 'failed', reason, detail });

function startsLike(buf: Uint8Array, prefix: Uint8Array): boolean {
  const n = Math.min(buf.length, prefix.length);
  for (let i = 0; i < n; i++) if (buf[i] !== prefix[i]) return false;
  return true;
}

/**
 * Parses the header at the start of `buf`. `maxV2Bytes` bounds the v2 length field, so a peer
 * cannot make the reader wait for 64 KiB of TLVs.
 */
export function parseProxyHeader(buf: Uint8Array, maxV2Bytes = 4096): ProxyParse {
  if (buf.length === 0) return PARTIAL;
  if (startsLike(buf, V2_SIGNATURE)) {
    return buf.length < V2_SIGNATURE.length
      ? PARTIAL
      : parseV2(Buffer.from(buf.buffer, buf.byteOffset, buf.length), maxV2Bytes);
  }
  if (startsLike(buf, V1_PREFIX)) return parseV1(buf);
  return fail('not-proxy', 'Connection did not start with a PROXY protocol header');
}

const PORT = /^(?:0|[1-9][0-9]{0,4})$/;

function parseV1(buf: Uint8Array): ProxyParse {
  const window = Buffer.from(buf.subarray(0, Math.min(buf.length, V1_MAX)));
  const end = window.indexOf('\r\n', 0, 'latin1');
  if (end < 0) {
    if (buf.length >= V1_MAX) return fail('bad-v1', `No CRLF within ${V1_MAX} bytes`);
    // A bare LF or a non-printable byte can never become valid; fail without waiting.
    for (let i = 0; i < window.length; i++) {
      const b = window[i] ?? 0;
      if (b !== 0x0d && (b < 0x20 || b > 0x7e)) return fail('bad-v1', 'Non-printable byte in v1 header');
    }
    return PARTIAL;
  }
  const line = window.toString('latin1', 0, end);
  const parts = line.split(' ');
  const length = end + 2;
  if (parts[1] === 'UNKNOWN')
    return done({ version: 1, command: 'proxy', family: 'unspec', tlvs: [], length });
  if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) {
    return fail('bad-v1', `Bad v1 line "${line.slice(0, 60)}"`);
  }
  const family = parts[1] === 'TCP4' ? 'tcp4' : 'tcp6';
  const want = family === 'tcp4' ? 4 : 6;
  const [, , srcText = '', dstText = '', srcPort = '', dstPort = ''] = parts;
  const src = parseIp(srcText);
  const dst = parseIp(dstText);
  // The mapped form `::ffff:a.b.c.d` normalises to IPv4; in a TCP6 line it is still the right family.
  const familyOk = (text: string, ip: typeof src) =>
    ip !== undefined && (ip.family === want || (want === 6 && text.includes(':')));
  if (!familyOk(srcText, src) || !familyOk(dstText, dst) || src === undefined || dst === undefined) {
    return fail('bad-address', `Bad ${parts[1]} addresses in v1 header`);
  }
  if (!PORT.test(srcPort) || !PORT.test(dstPort) || Number(srcPort) > 65535 || Number(dstPort) > 65535) {
    return fail('bad-address', 'Bad port in v1 header');
  }
  return done({
    version: 1,
    command: 'proxy',
    family,
    source: { address: formatIp(src.bytes), port: Number(srcPort) },
    destination: { address: formatIp(dst.bytes), port: Number(dstPort) },
    tlvs: [],
    length,
  });
}

function done(header: ProxyHeader): ProxyParse {
  return { state: 'done', header };
}

const FAMILIES: Readonly<Record<number, { family: ProxyFamily; size: number }>> = {
  0x00: { family: 'unspec', size: 0 },
  0x11: { family: 'tcp4', size: 12 },
  0x12: { family: 'udp4', size: 12 },
  0x21: { family: 'tcp6', size: 36 },
  0x22: { family: 'udp6', size: 36 },
  0x31: { family: 'unix', size: 216 },
  0x32: { family: 'unix', size: 216 },
};

function parseV2(buf: Buffer, maxBytes: number): ProxyParse {
  if (buf.length < 13) return PARTIAL;
  const verCmd = buf[12] ?? 0;
  if (verCmd >> 4 !== 2) return fail('bad-version', `Version nibble ${verCmd >> 4} is not 2`);
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return fail('bad-command', `Command ${cmd} is neither LOCAL nor PROXY`);
  if (buf.length < 14) return PARTIAL;
  const fam = FAMILIES[buf[13] ?? 0xff];
  if (fam === undefined) return fail('bad-family', `Address family byte 0x${(buf[13] ?? 0).toString(16)}`);
  if (buf.length < V2_HEADER) return PARTIAL;
  const bodyLength = buf.readUInt16BE(14);
  if (V2_HEADER + bodyLength > maxBytes)
    return fail('too-large', `v2 header of ${bodyLength} bytes over the limit`);
  if (buf.length < V2_HEADER + bodyLength) return PARTIAL;
  const local = cmd === 0;
  if (!local && bodyLength < fam.size) return fail('bad-address', `v2 body of ${bodyLength} bytes is short`);
  const header = buf.subarray(0, V2_HEADER + bodyLength);
  // LOCAL carries no meaningful address (§2.2); its body may hold anything, TLVs after the block.
  const addressSize = local ? Math.min(fam.size, bodyLength) : fam.size;
  const tlvs = parseTlvs(header, V2_HEADER + addressSize);
  if (typeof tlvs === 'string') return fail('bad-tlv', tlvs);
  const crcProblem = checkCrc(header, tlvs.list);
  if (crcProblem !== undefined) return fail('bad-crc', crcProblem);
  const base = {
    version: 2 as const,
    command: local ? ('local' as const) : ('proxy' as const),
    family: fam.family,
    tlvs: tlvs.list,
    length: header.length,
    ...tlvs.known,
  };
  if (
    local ||
    (fam.family !== 'tcp4' && fam.family !== 'tcp6' && fam.family !== 'udp4' && fam.family !== 'udp6')
  ) {
    return done(base);
  }
  const size = fam.family.endsWith('4') ? 4 : 16;
  const at = V2_HEADER;
  return done({
    ...base,
    source: { address: formatIp(header.subarray(at, at + size)), port: header.readUInt16BE(at + 2 * size) },
    destination: {
      address: formatIp(header.subarray(at + size, at + 2 * size)),
      port: header.readUInt16BE(at + 2 * size + 2),
    },
  });
}

interface TlvResult {
  readonly list: ProxyTlv[];
  readonly known: { authority?: string; alpn?: string };
}

function parseTlvs(header: Buffer, start: number): TlvResult | string {
  const list: ProxyTlv[] = [];
  const known: { authority?: string; alpn?: string } = {};
  let at = start;
  while (at < header.length) {
    if (header.length - at < 3) return 'Truncated TLV header';
    const type = header[at] ?? 0;
    const length = header.readUInt16BE(at + 1);
    if (at + 3 + length > header.length) return `TLV 0x${type.toString(16)} overruns the header`;
    const value = header.subarray(at + 3, at + 3 + length);
    if (type === PP2_TYPE.CRC32C && length !== 4) return 'CRC32C TLV is not 4 bytes';
    if (type === PP2_TYPE.AUTHORITY) {
      const text = value.toString('utf8');
      if (length === 0 || length > 255 || !Buffer.from(text, 'utf8').equals(value))
        return 'Bad AUTHORITY TLV';
      known.authority = text;
    }
    if (type === PP2_TYPE.ALPN) known.alpn = value.toString('latin1');
    list.push({ type, value });
    at += 3 + length;
  }
  return { list, known };
}

function checkCrc(header: Buffer, tlvs: readonly ProxyTlv[]): string | undefined {
  const crcTlvs = tlvs.filter((t) => t.type === PP2_TYPE.CRC32C);
  if (crcTlvs.length === 0) return undefined;
  if (crcTlvs.length > 1) return 'More than one CRC32C TLV';
  const tlv = crcTlvs[0];
  if (tlv === undefined) return undefined;
  const expected = tlv.value.readUInt32BE(0);
  // §2.2.5: the checksum covers the whole header with the CRC32C value field set to zero.
  const copy = Buffer.from(header);
  copy.fill(0, tlv.value.byteOffset - header.byteOffset, tlv.value.byteOffset - header.byteOffset + 4);
  const actual = crc32c(copy);
  return actual === expected
    ? undefined
    : `CRC32C ${actual.toString(16)} does not match ${expected.toString(16)}`;
}

/** What the v2 writer needs. */
export interface ProxyV2Options {
  readonly source: ProxyAddress;
  readonly destination: ProxyAddress;
  /** Sent as PP2_TYPE_AUTHORITY: the SNI the client asked for. */
  readonly authority?: string;
  readonly alpn?: string;
  /** Appends a PP2_TYPE_CRC32C TLV. */
  readonly crc32c?: boolean;
}

function encodeTlv(type: number, value: Uint8Array): Buffer {
  const head = Buffer.from([type, value.length >> 8, value.length & 0xff]);
  return Buffer.concat([head, value]);
}

/** Encodes a v2 PROXY command over TCP; mixed families are sent as IPv6 (IPv4-mapped). */
export function encodeProxyV2(options: ProxyV2Options): Buffer {
  const src = parseIp(options.source.address);
  const dst = parseIp(options.destination.address);
  if (src === undefined || dst === undefined) {
    throw new TypeError(
      `Cannot encode PROXY v2 for "${options.source.address}" -> "${options.destination.address}"`,
    );
  }
  const v4 = src.family === 4 && dst.family === 4;
  const widen = (ip: typeof src) =>
    ip.family === 6 ? ip.bytes : Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...ip.bytes]);
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(options.source.port, 0);
  ports.writeUInt16BE(options.destination.port, 2);
  const addresses = v4
    ? Buffer.concat([src.bytes, dst.bytes, ports])
    : Buffer.concat([widen(src), widen(dst), ports]);
  const tlvs: Buffer[] = [];
  if (options.alpn !== undefined) tlvs.push(encodeTlv(PP2_TYPE.ALPN, Buffer.from(options.alpn, 'latin1')));
  if (options.authority !== undefined)
    tlvs.push(encodeTlv(PP2_TYPE.AUTHORITY, Buffer.from(options.authority, 'utf8')));
  if (options.crc32c === true) tlvs.push(encodeTlv(PP2_TYPE.CRC32C, Buffer.alloc(4)));
  const body = Buffer.concat([addresses, ...tlvs]);
  const head = Buffer.concat([
    V2_SIGNATURE,
    Buffer.from([0x21, v4 ? 0x11 : 0x21, body.length >> 8, body.length & 0xff]),
  ]);
  const out = Buffer.concat([head, body]);
  if (options.crc32c === true) out.writeUInt32BE(crc32c(out), out.length - 4);
  return out;
}

/** Encodes a v2 LOCAL command (no addresses), as health checks send. */
export function encodeProxyV2Local(): Buffer {
  return Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0, 0])]);
}
