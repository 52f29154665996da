/**
 * RFC 6962 §2.1 Merkle tree hash over leaf hashes, written from the definition for tests (the
 * Go checksum database fixture and the registry door's proof tests), independent of the door's
 * own proof code.
 */
import { createHash } from 'node:crypto';

const sha = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();

/** MTH(D[n]): the leaf itself for one, else node(MTH(first k), MTH(rest)) with k the largest power of two below n. */
export function merkleTreeHash(leaves: readonly Buffer[]): Buffer {
  if (leaves.length === 1) return leaves[0] as Buffer;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return sha(Buffer.of(1), merkleTreeHash(leaves.slice(0, k)), merkleTreeHash(leaves.slice(k)));
}
