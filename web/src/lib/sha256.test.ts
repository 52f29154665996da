import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sha256OfFile } from './hash-file.ts';
import { Sha256 } from './sha256.ts';

const reference = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

describe('Sha256', () => {
  it('matches the FIPS 180-4 examples', () => {
    expect(new Sha256().update(new Uint8Array()).hex()).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    expect(new Sha256().update(new TextEncoder().encode('abc')).hex()).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('equals node:crypto for any input split into any chunks', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 700 }),
        fc.array(fc.nat(700), { maxLength: 8 }),
        (data, cuts) => {
          const hash = new Sha256();
          const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
          let at = 0;
          for (const p of [...points, data.length]) {
            hash.update(data.subarray(at, p));
            at = p;
          }
          expect(hash.hex()).toBe(reference(data));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses updates after the digest', () => {
    const hash = new Sha256();
    hash.hex();
    expect(() => hash.update(new Uint8Array(1))).toThrow(TypeError);
  });
});

describe('sha256OfFile', () => {
  it('gives the same digest streamed in chunks as in one piece, reporting progress', async () => {
    const data = new Uint8Array(300_001).map((_, i) => (i * 31) % 251);
    const blob = new Blob([data]);
    const progress: number[] = [];
    const streamed = await sha256OfFile(blob, {
      webCryptoLimit: 0,
      chunkSize: 65_536,
      onProgress: (n) => progress.push(n),
    });
    expect(streamed).toBe(reference(data));
    expect(progress.at(-1)).toBe(data.length);
    expect(progress.length).toBe(Math.ceil(data.length / 65_536));
    expect(await sha256OfFile(blob)).toBe(reference(data));
  });

  it('stops when aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(
      sha256OfFile(new Blob([new Uint8Array(10)]), { webCryptoLimit: 0, signal: controller.signal }),
    ).rejects.toThrow();
  });
});
