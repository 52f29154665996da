/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as PROXY protocol v2 §2.2.5 requires for
 * its PP2_TYPE_CRC32C TLV. Written here because Node's zlib only offers the IEEE CRC32.
 */
const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** The CRC32C of `bytes`; pass a previous result as `crc` to continue over several buffers. */
export function crc32c(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (const byte of bytes) c = (TABLE[(c ^ byte) & 0xff] ?? 0) ^ (c >>> 8);
  return ~c >>> 0;
}
