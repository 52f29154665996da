import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32, gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import { crc32Combine, deflatePiece, gzipOfPieces } from './gzip-splice.ts';

void describe('spliced gzip', () => {
  void it('combines CRC-32s like one pass over the concatenation (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }), (a, b) => {
        const whole = crc32(Buffer.concat([a, b]));
        assert.equal(crc32Combine(crc32(a), crc32(b), b.length), whole);
      }),
    );
  });

  void it('decompresses to the concatenation of its pieces (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 2000 }), { maxLength: 12 }), (texts) => {
        const gz = gzipOfPieces(texts.map((t) => deflatePiece(t)));
        assert.equal(gunzipSync(gz).toString('utf8'), texts.join(''));
      }),
    );
  });

  void it('handles pieces larger than a deflate window and empty documents', () => {
    const big = 'lorem ipsum '.repeat(20_000);
    const pieces = [deflatePiece(big), deflatePiece(''), deflatePiece(Buffer.from('é☃'))];
    assert.equal(gunzipSync(gzipOfPieces(pieces)).toString('utf8'), `${big}é☃`);
    assert.equal(gunzipSync(gzipOfPieces([])).length, 0);
  });

  void it('is refused by gunzip when a piece is corrupted (the CRC covers every piece)', () => {
    const a = deflatePiece('{"a":1}');
    const b = deflatePiece('{"b":2}');
    const forged = { ...b, crc: (b.crc ^ 1) >>> 0 };
    assert.throws(() => gunzipSync(gzipOfPieces([a, forged])), /incorrect data check|unexpected end/i);
  });
});
