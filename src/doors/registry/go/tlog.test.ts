import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { merkleTreeHash } from '#testing/merkle';
import {
  checkConsistent,
  openNote,
  parseTreeHead,
  parseVerifierKey,
  recordHash,
  rootWithRecord,
  SumdbVerificationError,
  splitLookup,
  tilePath,
} from './tlog.ts';

const sha = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();

/** A tile server over `leaves`: level L holds the hashes of aligned blocks of 256^L leaves. */
function tiles(leaves: readonly Buffer[], reads: string[] = []) {
  return async (level: number, index: number, width: number) => {
    reads.push(tilePath(level, index, width));
    const block = 256 ** level;
    const out: Buffer[] = [];
    for (let i = index * 256; i < index * 256 + width; i++)
      out.push(merkleTreeHash(leaves.slice(i * block, (i + 1) * block)));
    return Buffer.concat(out);
  };
}

const records = (n: number) => Array.from({ length: n }, (_, i) => `example.test/m${i} v1.0.0 h1:${i}=\n`);

/** A key pair and its verifier key string, as `GOSUMDB` names it. */
function keyPair(name: string) {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = (publicKey.export({ format: 'der', type: 'spki' }) as Buffer).subarray(12);
  const keyBytes = Buffer.concat([Buffer.of(1), raw]);
  const hash = sha(Buffer.from(`${name}\n`), keyBytes).readUInt32BE(0);
  const vkey = `${name}+${hash.toString(16).padStart(8, '0')}+${keyBytes.toString('base64')}`;
  const signNote = (text: string) => {
    const sig = Buffer.concat([Buffer.alloc(4), sign(null, Buffer.from(text), privateKey)]);
    sig.writeUInt32BE(hash, 0);
    return `${text}\n\u2014 ${name} ${sig.toString('base64')}\n`;
  };
  return { vkey, signNote };
}

void describe('Go checksum database verification', () => {
  void it('parses real verifier keys, whose base64 may contain "+"', () => {
    const v = parseVerifierKey('sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8');
    assert.equal(v.name, 'sum.golang.org');
    assert.equal(v.keyHash, 0x033de0ae);
    for (const bad of [
      'sum.golang.org',
      'sum.golang.org+033de0ae',
      'sum.golang.org+033de0af+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8',
      'sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh',
      'sum.golang.org+033de0ae+Bc4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8',
    ])
      assert.throws(() => parseVerifierKey(bad), RangeError, bad);
  });

  void it('names tiles as tlog does', () => {
    assert.equal(tilePath(0, 0, 256), 'tile/8/0/000');
    assert.equal(tilePath(1, 1234067, 17), 'tile/8/1/x001/x234/067.p/17');
    assert.equal(tilePath(2, 1000, 256), 'tile/8/2/x001/000');
  });

  void it('opens notes signed by the key and nothing else', () => {
    const { vkey, signNote } = keyPair('sum.example.test');
    const v = parseVerifierKey(vkey);
    const text = `go.sum database tree\n7\n${sha(Buffer.from('x')).toString('base64')}\n`;
    const note = signNote(text);
    assert.equal(openNote(note, v), text);
    assert.deepEqual(parseTreeHead(openNote(note, v)).size, 7);
    const other = keyPair('sum.example.test');
    for (const bad of [
      note.replace('\n7\n', '\n8\n'),
      other.signNote(text),
      keyPair('elsewhere.test').signNote(text),
      text,
      `${text}\n\u2014 sum.example.test !!!\n`,
    ])
      assert.throws(() => openNote(bad, v), SumdbVerificationError, bad);
  });

  void it('proves a record into the signed root, for any tree and record (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 700 }), fc.nat(), async (size, pick) => {
        const texts = records(size);
        const leaves = texts.map(recordHash);
        const id = pick % size;
        const root = await rootWithRecord(size, id, recordHash(texts[id] as string), tiles(leaves));
        assert.ok(root.equals(merkleTreeHash(leaves)));
        const forged = await rootWithRecord(
          size,
          id,
          recordHash('example.test/m v1.0.0 h1:forged=\n'),
          tiles(leaves),
        );
        assert.ok(!forged.equals(merkleTreeHash(leaves)));
      }),
      { numRuns: 60 },
    );
  });

  void it('reads tiles of higher levels for large trees, each once', async () => {
    const size = 256 * 256 + 300;
    const leaves = records(size).map(recordHash);
    const reads: string[] = [];
    const root = await rootWithRecord(size, 65_700, leaves[65_700] as Buffer, tiles(leaves, reads));
    assert.ok(root.equals(merkleTreeHash(leaves)));
    assert.ok(reads.includes('tile/8/2/000.p/1'), reads.join(' '));
    assert.equal(new Set(reads).size, reads.length);
    await assert.rejects(
      rootWithRecord(size, size, leaves[0] as Buffer, tiles(leaves)),
      SumdbVerificationError,
    );
  });

  void it('accepts tree heads of one append-only log and refuses a fork (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 600 }), fc.nat(), fc.nat(), async (size, pick, change) => {
        const leaves = records(size).map(recordHash);
        const small = pick % size;
        const big = { size, hash: merkleTreeHash(leaves) };
        const prefix = { size: small + 1, hash: merkleTreeHash(leaves.slice(0, small + 1)) };
        await checkConsistent(prefix, big, tiles(leaves));
        await checkConsistent(big, prefix, tiles(leaves));
        // The same prefix size with one record changed: another history.
        const forged = [...leaves];
        forged[change % (small + 1)] = recordHash('example.test/evil v1.0.0 h1:x=\n');
        const fork = { size: small + 1, hash: merkleTreeHash(forged.slice(0, small + 1)) };
        await assert.rejects(checkConsistent(fork, big, tiles(leaves)), SumdbVerificationError);
      }),
      { numRuns: 40 },
    );
  });

  void it('splits lookup answers and refuses malformed ones', () => {
    const answer =
      '12\nexample.test/m v1.0.0 h1:a=\nexample.test/m v1.0.0/go.mod h1:b=\n\ngo.sum database tree\n13\nx\n';
    const parts = splitLookup(answer);
    assert.equal(parts.id, 12);
    assert.equal(parts.record, 'example.test/m v1.0.0 h1:a=\nexample.test/m v1.0.0/go.mod h1:b=\n');
    assert.equal(parts.note, 'go.sum database tree\n13\nx\n');
    for (const bad of ['', 'x\nline\n\nnote', '12\nno blank line\n'])
      assert.throws(() => splitLookup(bad), SumdbVerificationError, bad);
    assert.throws(() => parseTreeHead('go.sum database tree\n13\nshort\n'), SumdbVerificationError);
  });
});
