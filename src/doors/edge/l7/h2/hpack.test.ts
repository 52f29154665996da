import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { HpackDecoder, HpackEncoder, HpackError } from './hpack.ts';
import {
  HUFFMAN_CODES,
  HUFFMAN_LENGTHS,
  HuffmanError,
  huffmanDecode,
  huffmanEncode,
  huffmanLength,
} from './huffman.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const pairs = (fields: readonly string[]) => {
  const out: [string, string][] = [];
  for (let i = 0; i < fields.length; i += 2) out.push([fields[i] ?? '', fields[i + 1] ?? '']);
  return out;
};
const decodeHuffman = (s: string) => {
  const b = hex(s);
  return huffmanDecode(b, 0, b.length, 1000);
};

void describe('HPACK Huffman code (RFC 7541 Appendix B)', () => {
  void it('derives the appendix codes from the lengths, a complete prefix code', () => {
    // Rows of Appendix B: (symbol, code LSB-aligned, bits).
    for (const [symbol, code, bits] of [
      [0, 0x1ff8, 13],
      [1, 0x7fffd8, 23],
      [10, 0x3ffffffc, 30],
      [32, 0x14, 6],
      [47, 0x18, 6],
      [48, 0x0, 5],
      [92, 0x7fff0, 19],
      [127, 0xffffffc, 28],
      [195, 0x7fff1, 19],
      [255, 0x3ffffee, 26],
      [256, 0x3fffffff, 30],
    ] as const) {
      assert.equal(HUFFMAN_CODES[symbol], code, `code of ${symbol}`);
      assert.equal(HUFFMAN_LENGTHS[symbol], bits, `length of ${symbol}`);
    }
    // Kraft: a complete prefix code has sum(2^-len) = 1 exactly.
    const kraft = HUFFMAN_LENGTHS.reduce((sum, l) => sum + 2 ** (30 - l), 0);
    assert.equal(kraft, 2 ** 30);
  });

  void it('decodes and encodes the C.4 examples', () => {
    assert.equal(decodeHuffman('f1e3 c2e5 f23a 6ba0 ab90 f4ff'), 'www.example.com');
    assert.equal(decodeHuffman('a8eb 1064 9cbf'), 'no-cache');
    assert.equal(decodeHuffman('25a8 49e9 5ba9 7d7f'), 'custom-key');
    const out = Buffer.alloc(32);
    const end = huffmanEncode('www.example.com', out, 0);
    assert.equal(out.subarray(0, end).toString('hex'), 'f1e3c2e5f23a6ba0ab90f4ff');
    assert.equal(huffmanLength('www.example.com'), 12);
  });

  void it('refuses EOS, padding longer than 7 bits and padding that is not all ones', () => {
    // EOS (30 one-bits) inside a string.
    assert.throws(() => decodeHuffman('ffff ffff'), HuffmanError);
    // 'a' = 00011, then 11 one-bits of padding: more than 7 bits.
    assert.throws(() => decodeHuffman('1f ff'), HuffmanError);
    // 'a' = 00011 then padding 000 instead of 111.
    assert.throws(() => decodeHuffman('18'), HuffmanError);
    // The right padding is accepted.
    assert.equal(decodeHuffman('1f'), 'a');
  });

  void it('round-trips any octets', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const text = Buffer.from(bytes).toString('latin1');
        const out = Buffer.alloc(huffmanLength(text));
        const end = huffmanEncode(text, out, 0);
        assert.equal(end, out.length);
        assert.equal(huffmanDecode(out, 0, end, 1000), text);
      }),
      { numRuns: 500 },
    );
  });
});

void describe('HPACK decoder (RFC 7541)', () => {
  void it('decodes the C.3 request sequence with its dynamic table', () => {
    const d = new HpackDecoder();
    assert.deepEqual(pairs(d.decode(hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d'), 1e6).fields), [
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
    ]);
    assert.equal(d.dynamicSize, 57);
    assert.deepEqual(pairs(d.decode(hex('8286 84be 5808 6e6f 2d63 6163 6865'), 1e6).fields).at(-1), [
      'cache-control',
      'no-cache',
    ]);
    assert.equal(d.dynamicSize, 110);
    const third = d.decode(
      hex('8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65'),
      1e6,
    );
    assert.deepEqual(pairs(third.fields), [
      [':method', 'GET'],
      [':scheme', 'https'],
      [':path', '/index.html'],
      [':authority', 'www.example.com'],
      ['custom-key', 'custom-value'],
    ]);
    assert.equal(d.dynamicSize, 164);
  });

  void it('decodes the C.6 Huffman responses, evicting from a 256-octet table', () => {
    const d = new HpackDecoder(256);
    const first = d.decode(
      hex(
        '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3',
      ),
      1e6,
    );
    assert.deepEqual(pairs(first.fields), [
      [':status', '302'],
      ['cache-control', 'private'],
      ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'],
      ['location', 'https://www.example.com'],
    ]);
    assert.equal(d.dynamicSize, 222);
    const second = d.decode(hex('4883 640e ffc1 c0bf'), 1e6);
    assert.deepEqual(pairs(second.fields)[0], [':status', '307']);
    assert.deepEqual(pairs(second.fields)[1], ['cache-control', 'private']);
    assert.equal(d.dynamicSize, 222);
    const third = d.decode(
      hex(
        '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
      ),
      1e6,
    );
    assert.deepEqual(pairs(third.fields), [
      [':status', '200'],
      ['cache-control', 'private'],
      ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'],
      ['location', 'https://www.example.com'],
      ['content-encoding', 'gzip'],
      ['set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1'],
    ]);
    assert.equal(d.dynamicSize, 215);
  });

  void it('refuses indexes outside the tables, index 0 and truncated input', () => {
    const d = new HpackDecoder();
    assert.throws(() => d.decode(hex('be'), 1e6), HpackError, 'index 62 with an empty dynamic table');
    assert.throws(() => d.decode(hex('80'), 1e6), HpackError, 'index 0');
    assert.throws(() => d.decode(hex('ff'), 1e6), HpackError, 'integer cut short');
    assert.throws(() => d.decode(hex('ff ff ff ff ff ff 7f'), 1e6), HpackError, 'integer over 2^31');
    assert.throws(() => d.decode(hex('04 0c 2f73'), 1e6), HpackError, 'string longer than the block');
    assert.throws(() => d.decode(hex('04 8c ffff ffff'), 1e6), HpackError, 'Huffman string with EOS');
  });

  void it('keeps dynamic table size updates within SETTINGS and at the start of a block', () => {
    const d = new HpackDecoder(4096);
    // 0x3f e1 1f = 5-bit prefix integer 4097.
    assert.throws(() => d.decode(hex('3f e2 1f'), 1e6), HpackError, 'update over 4096');
    assert.throws(() => d.decode(hex('82 20'), 1e6), HpackError, 'update after a field');
    // A size update to 0 empties the table; an index into it then fails.
    d.decode(hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'), 1e6);
    assert.equal(d.dynamicSize, 55);
    assert.throws(() => d.decode(hex('20 be'), 1e6), HpackError, 'the entry is gone');
    assert.equal(d.dynamicSize, 0);
  });

  void it('reports a header list over the size limit and keeps the table in step', () => {
    const d = new HpackDecoder();
    const block = hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572');
    const r = d.decode(block, 40);
    assert.equal(r.tooLarge, true);
    assert.deepEqual(r.fields, []);
    assert.equal(d.dynamicSize, 55, 'the entry was still added');
  });

  void it('reports a Huffman-coded value of 200 000 octets as too large instead of failing', () => {
    const block = new HpackEncoder({ huffman: true }).encode(['x-big', 'a'.repeat(200_000)]);
    const r = new HpackDecoder().decode(block, 64 * 1024);
    assert.equal(r.tooLarge, true);
    const whole = new HpackDecoder().decode(block, 1e6);
    assert.equal(whole.fields[1]?.length, 200_000);
  });
});

void describe('HPACK encoder', () => {
  const field = fc.tuple(
    fc.oneof(
      fc.constantFrom(':status', ':path', 'content-type', 'user-agent', 'x-forwarded-for', 'grpc-status'),
      fc.stringMatching(/^[a-z0-9-]{1,40}$/),
    ),
    fc.oneof(
      fc.constantFrom('200', '/', 'GET', 'gzip, deflate'),
      fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
    ),
  );

  void it('round-trips random field lists through the decoder, with and without Huffman', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(field, { maxLength: 20 }), { minLength: 1, maxLength: 5 }),
        fc.boolean(),
        (blocks, huffman) => {
          const encoder = new HpackEncoder({ huffman });
          const decoder = new HpackDecoder();
          for (const block of blocks) {
            const fields = block.flat();
            const decoded = decoder.decode(encoder.encode(fields), 1e9);
            assert.deepEqual(decoded.fields, fields);
            assert.equal(decoded.tooLarge, false);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  void it('uses the static table and announces a table size of 0 once', () => {
    const e = new HpackEncoder();
    assert.equal(e.encode([':method', 'GET', ':status', '200']).toString('hex'), '208288');
    assert.equal(e.encode([':status', '200']).toString('hex'), '88');
    e.tableSizeChanged();
    assert.equal(e.encode([':status', '200']).toString('hex'), '2088');
  });

  void it('decodes whatever the decoder is fed without throwing anything but HpackError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const d = new HpackDecoder();
        try {
          d.decode(Buffer.from(bytes), 4096);
        } catch (error) {
          assert.ok(error instanceof HpackError, String(error));
        }
      }),
      { numRuns: 2000 },
    );
  });
});
