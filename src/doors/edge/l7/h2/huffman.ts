/**
 * The static Huffman code of HPACK (RFC 7541 §5.2, Appendix B). The code is canonical, so the
 * table below holds only each symbol's code length (Appendix B, "len in bits", symbols 0–255 and
 * EOS = 256); the codes themselves follow from the lengths (shorter codes first, then by symbol),
 * and the tests check the derived codes against rows of the appendix and its C.4 examples.
 */

// biome-ignore format: sixteen symbols a row, to read against the appendix.
const LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0-15
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 16-31
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, // 32-47 ' ' to '/'
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // 48-63 '0' to '?'
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // 64-79 '@' to 'O'
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 80-95 'P' to '_'
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, // 96-111 '`' to 'o'
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 112-127 'p' to DEL
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128-143
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144-159
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160-175
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176-191
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192-207
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208-223
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224-239
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240-255
  30, // EOS
] as const;

const EOS = 256;

/** Code lengths in bits, by symbol (0–256). */
export const HUFFMAN_LENGTHS: readonly number[] = LENGTHS;

/** Canonical codes (LSB-aligned), by symbol. */
export const HUFFMAN_CODES: readonly number[] = (() => {
  const order = LENGTHS.map((_, symbol) => symbol).toSorted(
    (a, b) => (LENGTHS[a] ?? 0) - (LENGTHS[b] ?? 0) || a - b,
  );
  const codes = Array.from({ length: LENGTHS.length }, () => 0);
  let code = 0;
  let length = LENGTHS[order[0] ?? 0] ?? 0;
  for (const symbol of order) {
    const l = LENGTHS[symbol] ?? 0;
    code *= 2 ** (l - length);
    length = l;
    codes[symbol] = code;
    code++;
  }
  return codes;
})();

/**
 * The decoding tree, walked a byte at a time: state = internal node, and for every (state, byte)
 * one packed entry: next state (bits 0–8), symbols emitted (bits 9–10), EOS seen (bit 11), first
 * symbol (bits 12–19), second symbol (bits 20–27). A byte completes at most two symbols because
 * the shortest code has 5 bits.
 */
interface Tables {
  readonly transitions: Uint32Array;
  /** A state in which a string may end: reached from the root by at most 7 one-bits (§5.2). */
  readonly accepting: Uint8Array;
}

const FAILED = 1 << 11;

function buildTables(): Tables {
  // Binary trie: children[2n], children[2n+1]; a value >= 0 is a node, -1 - symbol a leaf.
  const children: number[] = [0, 0];
  let nodes = 1;
  for (let symbol = 0; symbol <= EOS; symbol++) {
    const length = LENGTHS[symbol] ?? 0;
    const code = HUFFMAN_CODES[symbol] ?? 0;
    let node = 0;
    for (let bit = length - 1; bit >= 0; bit--) {
      const b = Math.floor(code / 2 ** bit) % 2;
      const slot = node * 2 + b;
      if (bit === 0) {
        children[slot] = -1 - symbol;
      } else {
        let next = children[slot] ?? 0;
        if (next <= 0) {
          next = nodes++;
          children[slot] = next;
          children.push(0, 0);
        }
        node = next;
      }
    }
  }
  const accepting = new Uint8Array(nodes);
  // Nodes on the all-ones path from the root, up to depth 7.
  let onesNode = 0;
  accepting[0] = 1;
  for (let depth = 1; depth <= 7; depth++) {
    const next = children[onesNode * 2 + 1] ?? -1;
    if (next <= 0) break;
    accepting[next] = 1;
    onesNode = next;
  }
  const transitions = new Uint32Array(nodes * 256);
  for (let state = 0; state < nodes; state++) {
    for (let byte = 0; byte < 256; byte++) {
      let node = state;
      let emitted = 0;
      let entry = 0;
      for (let bit = 7; bit >= 0; bit--) {
        const next = children[node * 2 + ((byte >> bit) & 1)] ?? 0;
        if (next < 0) {
          const symbol = -1 - next;
          if (symbol === EOS) {
            entry |= FAILED;
            break;
          }
          entry |= symbol << (emitted === 0 ? 12 : 20);
          emitted++;
          node = 0;
        } else {
          node = next;
        }
      }
      transitions[state * 256 + byte] = (entry | (emitted << 9) | node) >>> 0;
    }
  }
  return { transitions, accepting };
}

const TABLES = buildTables();

/** Thrown for an invalid Huffman string (RFC 7541 §5.2: EOS, or padding that is not EOS's prefix). */
export class HuffmanError extends Error {}

/**
 * Decodes `src[start, end)` into latin1 text (one char per octet); throws HuffmanError. At most
 * `limit` octets are produced (the caller's header-size budget).
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number, limit: number): string {
  const { transitions, accepting } = TABLES;
  let state = 0;
  const out: number[] = [];
  for (let i = start; i < end; i++) {
    const entry = transitions[state * 256 + (src[i] ?? 0)] ?? 0;
    if ((entry & FAILED) !== 0) throw new HuffmanError('EOS symbol in a Huffman-coded string');
    const count = (entry >> 9) & 3;
    if (count > 0) {
      out.push((entry >> 12) & 0xff);
      if (count > 1) out.push((entry >> 20) & 0xff);
      if (out.length > limit) throw new HuffmanError('Huffman-coded string over the size limit');
    }
    state = entry & 0x1ff;
  }
  if (accepting[state] !== 1) throw new HuffmanError('Huffman padding is not a prefix of EOS');
  // apply() passes every octet as an argument: beyond a few thousand that overflows the stack.
  return out.length <= 4096 ? String.fromCharCode.apply(null, out) : Buffer.from(out).toString('latin1');
}

/** Octets `text` (latin1) takes Huffman-coded, padding included. */
export function huffmanLength(text: string): number {
  let bits = 0;
  for (let i = 0; i < text.length; i++) bits += LENGTHS[text.charCodeAt(i) & 0xff] ?? 0;
  return Math.ceil(bits / 8);
}

/** Writes `text` (latin1) Huffman-coded into `dst` at `offset`; returns the new offset. */
export function huffmanEncode(text: string, dst: Uint8Array, offset: number): number {
  let acc = 0;
  let bits = 0;
  let at = offset;
  for (let i = 0; i < text.length; i++) {
    const symbol = text.charCodeAt(i) & 0xff;
    let length = LENGTHS[symbol] ?? 0;
    const code = HUFFMAN_CODES[symbol] ?? 0;
    // Codes are up to 30 bits: feed them in pieces of at most 16 so `acc` stays below 2^24.
    while (length > 0) {
      const take = Math.min(length, 16);
      const piece = Math.floor(code / 2 ** (length - take)) & ((1 << take) - 1);
      acc = (acc << take) | piece;
      bits += take;
      length -= take;
      while (bits >= 8) {
        bits -= 8;
        dst[at++] = (acc >> bits) & 0xff;
      }
      acc &= (1 << bits) - 1;
    }
  }
  if (bits > 0) dst[at++] = ((acc << (8 - bits)) | ((1 << (8 - bits)) - 1)) & 0xff;
  return at;
}
