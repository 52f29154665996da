import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  ciphertextSize,
  decryptRange,
  decryptStream,
  encryptStream,
  HEADER_SIZE,
  MIN_SEGMENT,
  newHeader,
  parseHeader,
  type SegmentHeader,
  spanOf,
  TAG_SIZE,
} from './segmented-aead.ts';

async function* pieces(data: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function drain(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const chunk of source) out.push(Buffer.from(chunk));
  return Buffer.concat(out);
}

const SEG = MIN_SEGMENT;
const key = randomBytes(32);

async function seal(plain: Buffer, chunk = 10_000) {
  const header = newHeader(SEG);
  const stored = await drain(encryptStream(pieces(plain, chunk), key, header));
  return { header, stored };
}

/** Property: any range decrypts to the plaintext's bytes, reading only the segments that hold it. */
async function checkRanges(
  plain: Buffer,
  stored: Buffer,
  header: SegmentHeader,
  chunk: number,
  numRuns: number,
): Promise<void> {
  const size = plain.length;
  const seg = header.segmentSize;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: size - 1 }),
      fc.integer({ min: 0, max: size - 1 }),
      async (a, b) => {
        const start = Math.min(a, b);
        const end = Math.max(a, b);
        const span = spanOf(size, seg, start, end);
        assert.ok(span.end - span.start + 1 <= (span.last - span.first + 1) * (seg + TAG_SIZE));
        const slice = stored.subarray(span.start, span.end + 1);
        const out = await drain(decryptRange(pieces(slice, chunk), key, header, size, start, end));
        assert.deepEqual(out, plain.subarray(start, end + 1));
      },
    ),
    { numRuns },
  );
}

const isIntegrity = (error: unknown) => (error as { code?: string }).code === 'GW_ERR_ARTIFACTS_INTEGRITY';

void describe('segmented AES-256-GCM', () => {
  void it('round-trips random sizes around segment boundaries and has the predicted size', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.integer({ min: 0, max: 4 * SEG }),
          fc.constantFrom(0, 1, SEG - 1, SEG, SEG + 1, 2 * SEG, 3 * SEG),
        ),
        fc.integer({ min: 1, max: 3 * SEG }),
        async (size, chunk) => {
          const plain = randomBytes(size);
          const { header, stored } = await seal(plain, chunk);
          assert.equal(stored.length, ciphertextSize(size, SEG));
          assert.deepEqual(await drain(decryptStream(pieces(stored, 7777), key, header)), plain);
        },
      ),
      { numRuns: 40 },
    );
  });

  void it('detects a flipped bit anywhere in the stored blob', async () => {
    const plain = randomBytes(3 * SEG + 123);
    const { header, stored } = await seal(plain);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: stored.length - 1 }),
        fc.integer({ min: 0, max: 7 }),
        async (pos, bit) => {
          const bad = Buffer.from(stored);
          bad[pos] = (bad[pos] ?? 0) ^ (1 << bit);
          await assert.rejects(drain(decryptStream(pieces(bad, 5000), key, header)), isIntegrity);
        },
      ),
      { numRuns: 60 },
    );
  });

  void it('detects truncation at any length, including exactly at a segment boundary', async () => {
    const plain = randomBytes(3 * SEG);
    const { header, stored } = await seal(plain);
    const boundaries = [HEADER_SIZE, HEADER_SIZE + (SEG + TAG_SIZE), HEADER_SIZE + 2 * (SEG + TAG_SIZE)];
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.integer({ min: 0, max: stored.length - 1 }), fc.constantFrom(...boundaries)),
        async (cut) => {
          await assert.rejects(
            drain(decryptStream(pieces(stored.subarray(0, cut), 4096), key, header)),
            isIntegrity,
          );
        },
      ),
      { numRuns: 40 },
    );
  });

  void it('detects swapped and appended segments', async () => {
    const plain = randomBytes(3 * SEG);
    const { header, stored } = await seal(plain);
    const s = SEG + TAG_SIZE;
    const seg = (i: number) => stored.subarray(HEADER_SIZE + i * s, HEADER_SIZE + (i + 1) * s);
    const swapped = Buffer.concat([header.bytes, seg(1), seg(0), seg(2)]);
    await assert.rejects(drain(decryptStream(pieces(swapped, s), key, header)), isIntegrity);
    const appended = Buffer.concat([stored, seg(1)]);
    await assert.rejects(drain(decryptStream(pieces(appended, s), key, header)), isIntegrity);
  });

  void it('refuses another blob header, a wrong key and a malformed header', async () => {
    const { header, stored } = await seal(randomBytes(1000));
    const other = newHeader(SEG);
    await assert.rejects(drain(decryptStream(pieces(stored, 100), key, other)), isIntegrity);
    await assert.rejects(drain(decryptStream(pieces(stored, 100), randomBytes(32), header)), isIntegrity);
    assert.throws(() => parseHeader(Buffer.alloc(16)), isIntegrity);
    assert.deepEqual(parseHeader(header.bytes).prefix, header.prefix);
    assert.throws(() => newHeader(SEG - 1), RangeError);
  });

  void it('decrypts any byte range reading only the segments that hold it', async () => {
    const size = 4 * SEG + 999;
    const plain = randomBytes(size);
    const { header, stored } = await seal(plain);
    await checkRanges(plain, stored, header, 3000, 50);
  });

  void it('detects tampering inside a range and a range cut short', async () => {
    const size = 2 * SEG + 10;
    const { header, stored } = await seal(randomBytes(size));
    const span = spanOf(size, SEG, 5, size - 1);
    const slice = Buffer.from(stored.subarray(span.start, span.end + 1));
    slice[slice.length - 3] = (slice[slice.length - 3] ?? 0) ^ 1;
    await assert.rejects(
      drain(decryptRange(pieces(slice, 999), key, header, size, 5, size - 1)),
      isIntegrity,
    );
    const short = stored.subarray(span.start, span.start + SEG + TAG_SIZE);
    await assert.rejects(
      drain(decryptRange(pieces(short, 999), key, header, size, 5, size - 1)),
      isIntegrity,
    );
  });

  void it('round-trips whole streams and ranges of segments larger than one 64 KiB piece', async () => {
    const seg = 4 * MIN_SEGMENT + 4096;
    const size = 3 * seg + 5000;
    const plain = randomBytes(size);
    const header = newHeader(seg);
    const stored = await drain(encryptStream(pieces(plain, 50_000), key, header));
    assert.equal(stored.length, ciphertextSize(size, seg));
    assert.deepEqual(await drain(decryptStream(pieces(stored, 70_001), key, header)), plain);
    await checkRanges(plain, stored, header, 65_000, 40);
  });

  void it('releases no piece of a segment whose tag fails, even when the flip is in its last piece', async () => {
    const seg = 4 * MIN_SEGMENT;
    const plain = randomBytes(2 * seg);
    const header = newHeader(seg);
    const stored = Buffer.from(await drain(encryptStream(pieces(plain, seg), key, header)));
    // Last ciphertext byte of the second segment, just before its tag.
    const at = HEADER_SIZE + 2 * (seg + TAG_SIZE) - TAG_SIZE - 1;
    stored[at] = (stored[at] ?? 0) ^ 1;
    let released = 0;
    await assert.rejects(async () => {
      for await (const chunk of decryptStream(pieces(stored, 100_000), key, header)) released += chunk.length;
    }, isIntegrity);
    assert.equal(released, seg);
  });
});

void describe('decryptStream ends its source', () => {
  /** A stored blob as a stream that records whether it was ended (a file stream closes its fd then). */
  function tracked(data: Buffer, size: number) {
    const state = { ended: false };
    const source = pieces(data, size);
    const iterable: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]: () => ({
        next: () => source.next(),
        return: async () => {
          state.ended = true;
          return source.return(undefined);
        },
      }),
    };
    return { iterable, state };
  }

  void it('when the reader stops early, when the header is wrong, and not twice after the end', async () => {
    const plain = randomBytes(5 * SEG);
    const { header, stored } = await seal(plain);
    const early = tracked(stored, 4096);
    for await (const chunk of decryptStream(early.iterable, key, header)) {
      assert.ok(chunk.length > 0);
      break;
    }
    assert.equal(early.state.ended, true, 'a reader that stops early ends the stored stream');

    const other = newHeader(SEG);
    const wrong = tracked(stored, 4096);
    await assert.rejects(drain(decryptStream(wrong.iterable, key, other)), /header does not match/);
    assert.equal(wrong.state.ended, true, 'a refused header ends the stored stream');

    const whole = tracked(stored, 4096);
    assert.deepEqual(await drain(decryptStream(whole.iterable, key, header)), plain);
    assert.equal(whole.state.ended, false, 'a stream read to its end is not ended again');
  });
});
