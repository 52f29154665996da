import { isIP } from 'node:net';

/** The eight 16-bit groups of an IPv6 address as numbers; undefined when it is not one. */
export function ipv6Groups(address: string): number[] | undefined {
  const ip = address.split('%')[0] ?? '';
  if (isIP(ip) !== 6) return undefined;
  let text = ip;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4 !== null) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => Number.parseInt(g, 16)));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  const fill = tail === undefined ? [] : Array.from({ length: 8 - left.length - right.length }, () => 0);
  return [...left, ...fill, ...right];
}

/**
 * The rate-limit key of an anonymous client. One IPv6 host usually holds a whole /64 (RFC 4291
 * section 2.5.4, SLAAC), so per-address buckets would give it 2^64 of them; its /64 is one key.
 * An IPv4 client is keyed by its address, also when the socket reports it IPv4-mapped.
 */
export function anonymousClientKey(ip: string): string {
  const groups = ipv6Groups(ip);
  if (groups === undefined) return `ip:${ip}`;
  // An IPv4-mapped address (::ffff:a.b.c.d, how a dual-stack socket sees an IPv4 client) is that
  // IPv4 client, not the one /64 that every IPv4 client would then share.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    const [hi = 0, lo = 0] = groups.slice(6);
    return `ip:${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  }
  return `ip6:${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}
