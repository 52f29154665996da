import { isIPv4, isIPv6 } from 'node:net';

/** Tests client addresses against a list of IPv4/IPv6 CIDR blocks (or single addresses). */
export interface CidrMatcher {
  /** True when `ip` (IPv4, IPv6 or IPv4-mapped IPv6, optionally with a zone) is in a block. */
  matches(ip: string): boolean;
  /** True when every address of `cidr` is in one block; throws TypeError when `cidr` is invalid. */
  covers(cidr: string): boolean;
  /** The blocks as given, for messages. */
  readonly cidrs: readonly string[];
}

const MAPPED_PREFIX = 0xffffn << 32n;
const ALL_ONES = (1n << 128n) - 1n;

function parseIPv4(text: string): bigint | undefined {
  if (!isIPv4(text)) return undefined;
  return text.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function parseHalf(half: string): number[] {
  if (half === '') return [];
  const out: number[] = [];
  for (const part of half.split(':')) {
    if (part.includes('.')) {
      const v4 = Number(parseIPv4(part));
      out.push(v4 >>> 16, v4 & 0xffff);
    } else {
      out.push(Number.parseInt(part, 16));
    }
  }
  return out;
}

/** Parses any textual IPv6 form (RFC 4291 section 2.2, incl. embedded IPv4) to 128 bits. */
function parseIPv6(text: string): bigint | undefined {
  if (!isIPv6(text)) return undefined;
  const halves = text.split('::');
  const head = parseHalf(halves[0] ?? '');
  let groups = head;
  if (halves.length === 2) {
    const tail = parseHalf(halves[1] ?? '');
    groups = [...head, ...Array.from({ length: 8 - head.length - tail.length }, () => 0), ...tail];
  }
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}

/**
 * An address as 128 bits, IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`), so that a dual-stack
 * listener's `::ffff:10.0.0.1` and a plain `10.0.0.1` match the same blocks.
 */
export function ipToBigInt(ip: string): bigint | undefined {
  const bare = ip.includes('%') ? ip.slice(0, ip.indexOf('%')) : ip;
  const v4 = parseIPv4(bare);
  if (v4 !== undefined) return MAPPED_PREFIX | v4;
  return parseIPv6(bare);
}

interface Block {
  readonly network: bigint;
  readonly mask: bigint;
}

function parseBlock(cidr: string): Block {
  const slash = cidr.indexOf('/');
  const address = slash === -1 ? cidr : cidr.slice(0, slash);
  const prefixText = slash === -1 ? undefined : cidr.slice(slash + 1);
  const v4 = isIPv4(address);
  if (!v4 && !isIPv6(address)) throw new TypeError(`Invalid CIDR block "${cidr}": not an IP address`);
  const width = v4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) {
    throw new TypeError(`Invalid CIDR block "${cidr}": prefix length is not a number`);
  }
  const prefix = prefixText === undefined ? width : Number(prefixText);
  if (prefix > width) throw new TypeError(`Invalid CIDR block "${cidr}": prefix length above ${width}`);
  // IPv4 blocks live inside ::ffff:0:0/96, so their prefix grows by 96 bits.
  const bits = v4 ? prefix + 96 : prefix;
  const mask = bits === 0 ? 0n : (ALL_ONES << BigInt(128 - bits)) & ALL_ONES;
  const value = ipToBigInt(address) as bigint;
  return { network: value & mask, mask };
}

/**
 * Builds a matcher for CIDR blocks such as `10.0.0.0/8`, `2001:db8::/32` or a single address.
 * Throws TypeError naming the first invalid block (a configuration mistake).
 */
export function createCidrMatcher(cidrs: readonly string[]): CidrMatcher {
  const blocks = cidrs.map(parseBlock);
  return {
    cidrs: [...cidrs],
    matches(ip) {
      const value = ipToBigInt(ip);
      if (value === undefined) return false;
      return blocks.some((b) => (value & b.mask) === b.network);
    },
    covers(cidr) {
      const inner = parseBlock(cidr);
      // Inside when it is at least as narrow (its mask keeps every bit of the block's) and its
      // network falls in the block.
      return blocks.some((b) => (inner.mask & b.mask) === b.mask && (inner.network & b.mask) === b.network);
    },
  };
}

/**
 * The client an address counts as for failure counters and their limits: an IPv4 address
 * (IPv4-mapped IPv6 included) as itself, an IPv6 address as its /64, because one host usually
 * holds a whole /64 (RFC 4291 section 2.5.4 interface identifiers) and could otherwise use a
 * fresh address for every attempt. Text that is no address is kept (at most 64 characters).
 */
export function addressGroup(clientIp: string): string {
  const value = ipToBigInt(clientIp);
  if (value === undefined) return clientIp.slice(0, 64);
  if (value >> 32n === 0xffffn) {
    const v4 = Number(value & 0xffff_ffffn);
    return [v4 >>> 24, (v4 >>> 16) & 0xff, (v4 >>> 8) & 0xff, v4 & 0xff].join('.');
  }
  const groups = [3n, 2n, 1n, 0n].map((i) => ((value >> (64n + 16n * i)) & 0xffffn).toString(16));
  return `${groups.join(':')}::/64`;
}
