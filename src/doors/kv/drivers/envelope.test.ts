import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeEnvelope, encodeEnvelope, type Envelope } from './envelope.ts';

const envelope: fc.Arbitrary<Envelope> = fc.record(
  {
    version: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
    expiresAt: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
    metadata: fc.string({ unit: 'grapheme', minLength: 1 }),
    chunks: fc.record({
      id: fc.stringMatching(/^[a-f0-9]{32}$/),
      count: fc.nat(),
      size: fc.nat(),
    }),
    value: fc.uint8Array({ maxLength: 2048 }),
  },
  { requiredKeys: ['value'] },
);

void test('envelope round-trips every record', () => {
  fc.assert(
    fc.property(envelope, (e) => {
      const back = decodeEnvelope(encodeEnvelope(e));
      const plain = (x: Envelope | undefined) =>
        JSON.parse(JSON.stringify({ ...x, value: [...(x?.value ?? [])] }));
      assert.deepEqual(plain(back), plain(e));
    }),
  );
});

void test('envelope decoding never throws on arbitrary bytes and rejects truncation', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
      decodeEnvelope(bytes);
    }),
  );
  fc.assert(
    fc.property(envelope, fc.nat(), (e, cut) => {
      const bytes = encodeEnvelope(e);
      const headerEnd = bytes.length - e.value.length;
      const at = cut % headerEnd;
      assert.equal(decodeEnvelope(bytes.subarray(0, at)), undefined);
    }),
  );
});

void test('envelope rejects foreign data and malformed headers', () => {
  assert.equal(decodeEnvelope(Buffer.from('plain value')), undefined);
  const bad = (json: string) => {
    const h = Buffer.from(json);
    const b = Buffer.alloc(8 + h.length);
    b.set([0x47, 0x48, 0x4b, 0x01]);
    b.writeUInt32BE(h.length, 4);
    b.set(h, 8);
    return decodeEnvelope(b);
  };
  assert.equal(bad('[]'), undefined);
  assert.equal(bad('{"e":-1}'), undefined);
  assert.equal(bad('{"v":1.5}'), undefined);
  assert.equal(bad('{"v":"7"}'), undefined);
  assert.equal(bad('{"m":5}'), undefined);
  assert.equal(bad('{"c":{"id":"../x","count":1,"size":1}}'), undefined);
  assert.equal(bad('{not json'), undefined);
  assert.deepEqual(bad('{}')?.value.length, 0);
});
