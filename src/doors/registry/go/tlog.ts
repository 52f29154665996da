/**
 * Verification of Go checksum database answers (go.dev/design/25530-sumdb, the packages
 * golang.org/x/mod/sumdb/note and …/tlog): a lookup answer is a record (its id and `go.sum`
 * lines) followed by a signed tree head. The tree head's Ed25519 signature must come from the
 * configured verifier key, and the record must be in that tree: its leaf hash is combined with
 * hashes read from the database's tiles into the tree's root (RFC 6962 §2.1), which must equal
 * the signed one. Without both checks a proxy could answer any hash it likes.
 */
import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto';

/** A checksum database verifier key, as in `GOSUMDB` (`<name>+<hash>+<base64 key>`). */
export interface SumdbVerifier {
  readonly name: string;
  readonly keyHash: number;
  readonly key: KeyObject;
}

const ED25519 = 1;
// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410 §4); the raw 32-byte key follows.
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

const sha256 = (...parts: Buffer[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** The key hash of a note key: the first 4 bytes of SHA-256(name, newline, algorithm and key). */
const keyHashOf = (name: string, keyBytes: Buffer) =>
  sha256(Buffer.from(`${name}\n`), keyBytes).readUInt32BE(0);

/** Parses a verifier key; throws RangeError (a configuration mistake) when it is not one. */
export function parseVerifierKey(text: string): SumdbVerifier {
  // The base64 key may itself contain "+": only the first two separate fields (note.NewVerifier).
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+(\S+)$/.exec(text);
  const [, name = '', hash = '', b64 = ''] = m ?? [];
  if (m === null) throw new RangeError(`"${text}" is not a checksum database key ("<name>+<hash>+<key>")`);
  const keyBytes = Buffer.from(b64, 'base64');
  if (keyBytes.length !== 33 || keyBytes[0] !== ED25519 || keyBytes.toString('base64') !== b64)
    throw new RangeError(`The key of "${name}" is not a base64 Ed25519 note key`);
  const keyHash = Number.parseInt(hash, 16);
  if (keyHashOf(name, keyBytes) !== keyHash)
    throw new RangeError(`The key hash "${hash}" of "${name}" does not match its key`);
  const key = createPublicKey({
    key: Buffer.concat([SPKI_PREFIX, keyBytes.subarray(1)]),
    format: 'der',
    type: 'spki',
  });
  return { name, keyHash, key };
}

/** A signed tree head: the number of records and the root hash. */
export interface TreeHead {
  readonly size: number;
  readonly hash: Buffer;
}

/** Thrown when an answer is not authentic or not well formed. */
export class SumdbVerificationError extends Error {
  override readonly name = 'SumdbVerificationError';
}

const fail = (why: string): never => {
  throw new SumdbVerificationError(why);
};

/**
 * Checks a signed note (text, a blank line, `— <name> <base64 key hash and signature>` lines)
 * against the verifier and returns its text.
 */
export function openNote(note: string, v: SumdbVerifier): string {
  const split = note.lastIndexOf('\n\n');
  if (split < 0) fail('the tree head is not a signed note');
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2).split('\n');
  if (lines.at(-1) === '') lines.pop();
  for (const line of lines) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/]+=*)$/.exec(line);
    if (m === null) fail('the tree head has a malformed signature line');
    if (m?.[1] !== v.name) continue;
    const sig = Buffer.from(m[2] as string, 'base64');
    if (sig.length !== 68 || sig.readUInt32BE(0) !== v.keyHash) continue;
    if (verify(null, Buffer.from(text), v.key, sig.subarray(4))) return text;
    fail(`the tree head signature of "${v.name}" is invalid`);
  }
  return fail(`the tree head is not signed by "${v.name}"`);
}

/** Parses the text of a tree head note (`go.sum database tree`, size, base64 root hash). */
export function parseTreeHead(text: string): TreeHead {
  const m = /^go\.sum database tree\n(\d{1,15})\n([A-Za-z0-9+/]{43}=)\n$/.exec(text);
  if (m === null) fail('the signed note is not a go.sum tree head');
  return { size: Number(m?.[1]), hash: Buffer.from(m?.[2] as string, 'base64') };
}

/** A lookup answer split into the record id, the record text and the signed tree head. */
export function splitLookup(body: string): { id: number; record: string; note: string } {
  const eol = body.indexOf('\n');
  const id = body.slice(0, eol);
  const end = body.indexOf('\n\n', eol);
  if (eol < 0 || !/^\d{1,15}$/.test(id) || end < 0) fail('the lookup answer is not a record and a tree head');
  return { id: Number(id), record: body.slice(eol + 1, end + 1), note: body.slice(end + 2) };
}

const TILE_HEIGHT = 8;
const TILE_WIDTH = 1 << TILE_HEIGHT;

/** The hash of a record as a leaf (RFC 6962 §2.1: SHA-256 of 0x00 and the data). */
export const recordHash = (record: string): Buffer => sha256(Buffer.of(0), Buffer.from(record));
const nodeHash = (left: Buffer, right: Buffer) => sha256(Buffer.of(1), left, right);

/** The path of a tile (tlog `Tile.Path`): `tile/8/<level>/x001/x234/067[.p/<width>]`. */
export function tilePath(level: number, index: number, width: number): string {
  let n = index;
  let text = String(n % 1000).padStart(3, '0');
  while (n >= 1000) {
    n = Math.floor(n / 1000);
    text = `x${String(n % 1000).padStart(3, '0')}/${text}`;
  }
  return `tile/${TILE_HEIGHT}/${level}/${text}${width === TILE_WIDTH ? '' : `.p/${width}`}`;
}

/** Reads a tile: `width` hashes of 32 bytes at tree level `8 × level`. */
export type TileReader = (level: number, index: number, width: number) => Promise<Buffer>;

/**
 * The tree hash of records [0, `prefix`) computed from tiles of a tree of `size` >= `prefix`
 * records, with record `record.id` replaced by `record.leaf` when given. Every complete subtree
 * of the prefix is also one of the bigger tree, so its tiles hold it.
 */
async function treeHashFromTiles(
  size: number,
  prefix: number,
  read: TileReader,
  record?: { readonly id: number; readonly leaf: Buffer },
): Promise<Buffer> {
  const tiles = new Map<string, Promise<Buffer>>();
  const tile = (level: number, index: number, width: number) => {
    const key = `${level}/${index}/${width}`;
    let t = tiles.get(key);
    if (t === undefined) {
      t = read(level, index, width).then((data) =>
        data.length === width * 32
          ? data
          : fail(`tile ${tilePath(level, index, width)} has ${data.length} bytes`),
      );
      tiles.set(key, t);
    }
    return t;
  };
  // The hash of the complete subtree of 2^height records starting at record start.
  const complete = async (height: number, start: number): Promise<Buffer> => {
    const tileLevel = Math.floor(height / TILE_HEIGHT);
    const bottom = tileLevel * TILE_HEIGHT;
    const span = 2 ** (height - bottom);
    const first = start / 2 ** bottom;
    const index = Math.floor(first / TILE_WIDTH);
    const stored = Math.floor(size / 2 ** bottom);
    const data = await tile(tileLevel, index, Math.min(TILE_WIDTH, stored - index * TILE_WIDTH));
    let row: Buffer[] = [];
    for (let i = first - index * TILE_WIDTH; i < first - index * TILE_WIDTH + span; i++)
      row.push(data.subarray(i * 32, i * 32 + 32));
    while (row.length > 1) {
      const next: Buffer[] = [];
      for (let i = 0; i < row.length; i += 2) next.push(nodeHash(row[i] as Buffer, row[i + 1] as Buffer));
      row = next;
    }
    return row[0] as Buffer;
  };
  // RFC 6962 §2.1 MTH over records [lo, hi), splitting at the largest power of two below n.
  const range = async (lo: number, hi: number): Promise<Buffer> => {
    const n = hi - lo;
    const contains = record !== undefined && record.id >= lo && record.id < hi;
    if (n === 1 && contains) return record.leaf;
    if (!contains && Number.isInteger(Math.log2(n)) && lo % n === 0) return complete(Math.log2(n), lo);
    let k = 1;
    while (k * 2 < n) k *= 2;
    return nodeHash(await range(lo, lo + k), await range(lo + k, hi));
  };
  return range(0, prefix);
}

/**
 * Computes the root of a tree of `size` records in which record `id` has hash `leaf`, taking
 * every other subtree hash from tiles; equal to the signed root exactly when the record is in
 * the tree (and the tiles are honest, which the signed root also proves).
 */
export async function rootWithRecord(
  size: number,
  id: number,
  leaf: Buffer,
  read: TileReader,
): Promise<Buffer> {
  if (!(id >= 0 && id < size)) fail(`record ${id} is outside a tree of ${size} records`);
  return treeHashFromTiles(size, size, read, { id, leaf });
}

/**
 * Checks that two signed tree heads describe one append-only log: the smaller tree's root must
 * be the hash of the first records of the bigger one, computed from the bigger tree's tiles
 * (`readBigger`). A database that shows different trees to different clients fails here (the go
 * command's fork detection, go.dev/design/25530-sumdb "Proving consistency").
 */
export async function checkConsistent(a: TreeHead, b: TreeHead, readBigger: TileReader): Promise<void> {
  const [small, big] = a.size <= b.size ? [a, b] : [b, a];
  const root = small.size === big.size ? big.hash : await treeHashFromTiles(big.size, small.size, readBigger);
  if (!root.equals(small.hash))
    fail(`the tree of ${small.size} records is not a prefix of the tree of ${big.size} records (a fork)`);
}
