import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { ConnectionError, FRAME, FrameReader, frame } from './frames.ts';

interface Seen {
  readonly type: number;
  readonly flags: number;
  readonly id: number;
  readonly payload: string;
}

function reader(max = 16_384): { r: FrameReader; seen: Seen[] } {
  const seen: Seen[] = [];
  const r = new FrameReader(max, (type, flags, id, payload) =>
    seen.push({ type, flags, id, payload: payload.toString('hex') }),
  );
  return { r, seen };
}

void describe('HTTP/2 frame reader', () => {
  void it('reassembles a 16 KiB frame sent one byte at a time without copying it per byte', () => {
    const { r, seen } = reader();
    const payload = Buffer.alloc(16_384, 7);
    const bytes = frame(FRAME.DATA, 1, 3, payload);
    let copied = 0;
    const original = Object.getOwnPropertyDescriptor(Buffer, 'concat');
    const concat = Buffer.concat.bind(Buffer);
    // Count what Buffer.concat copies while the frame trickles in.
    Buffer.concat = (list: readonly Uint8Array[], total?: number) => {
      const out = concat(list, total);
      copied += out.length;
      return out;
    };
    try {
      for (let i = 0; i < bytes.length; i++) r.push(bytes.subarray(i, i + 1));
    } finally {
      if (original !== undefined) Object.defineProperty(Buffer, 'concat', original);
    }
    assert.deepEqual(seen, [{ type: FRAME.DATA, flags: 1, id: 3, payload: payload.toString('hex') }]);
    assert.equal(r.buffered, 0);
    assert.ok(copied < 3 * bytes.length, `${copied} bytes copied for a frame of ${bytes.length}`);
  });

  void it('delivers the same frames however the bytes are split', () => {
    const frameArb = fc.record({
      type: fc.integer({ min: 0, max: 12 }),
      flags: fc.integer({ min: 0, max: 255 }),
      id: fc.integer({ min: 0, max: 0x7fffffff }),
      payload: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    });
    fc.assert(
      fc.property(
        fc.array(frameArb, { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (frames, cuts) => {
          const bytes = Buffer.concat(frames.map((f) => frame(f.type, f.flags, f.id, f.payload)));
          const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].toSorted((a, b) => a - b);
          const { r, seen } = reader();
          let at = 0;
          for (const p of [...points, bytes.length]) {
            r.push(bytes.subarray(at, p));
            at = p;
          }
          assert.deepEqual(
            seen,
            frames.map((f) => ({
              type: f.type,
              flags: f.flags,
              id: f.id,
              payload: f.payload.toString('hex'),
            })),
          );
          assert.equal(r.buffered, 0);
        },
      ),
    );
  });

  void it('refuses a frame over the size limit before buffering its payload', () => {
    const { r } = reader(100);
    assert.throws(() => r.push(frame(FRAME.DATA, 0, 1, Buffer.alloc(101)).subarray(0, 9)), ConnectionError);
  });
});
