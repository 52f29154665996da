import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { chooseEncoding, decodeEntry, encodeEntry, makeEntry } from './entry.ts';
import { IntegrityMismatch, parseIntegrity, VerifyingStream } from './verify.ts';

const meta = { contentType: 'application/json', fetchedAt: 1, uplink: 'u', filtered: 0, total: 1 };

void describe('metadata entries', () => {
  void it('round-trip through the frame and reject truncated or foreign bytes (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 2000 }), fc.nat({ max: 100 }), async (text, cut) => {
        const e = await makeEntry(meta, text);
        const framed = encodeEntry(e);
        const back = decodeEntry(framed);
        assert.equal(back?.identity.toString(), text);
        assert.equal(back?.etag, e.etag);
        if (cut > 0)
          assert.equal(decodeEntry(framed.subarray(0, Math.max(0, framed.length - cut))), undefined);
      }),
    );
    assert.equal(decodeEntry(Buffer.from('not a frame at all')), undefined);
  });

  void it('chooses encodings by Accept-Encoding with q-values', () => {
    assert.equal(chooseEncoding('gzip, deflate, br'), 'br');
    assert.equal(chooseEncoding('gzip;q=1, br;q=0'), 'gzip');
    assert.equal(chooseEncoding('identity'), 'identity');
    assert.equal(chooseEncoding(undefined), 'identity');
    assert.equal(chooseEncoding('*'), 'br');
  });
});

void describe('integrity', () => {
  const data = Buffer.from('hello tarball');
  const sri = `sha512-${createHash('sha512').update(data).digest('base64')}`;

  void it('picks the strongest SRI digest and falls back to a hex digest', () => {
    assert.equal(
      parseIntegrity(`sha1-${createHash('sha1').update(data).digest('base64')} ${sri}`)?.algorithm,
      'sha512',
    );
    assert.deepEqual(parseIntegrity(undefined, { algorithm: 'sha1', hex: 'AB'.repeat(20) }), {
      algorithm: 'sha1',
      hex: 'ab'.repeat(20),
    });
    assert.equal(parseIntegrity('md5-xyz'), undefined);
  });

  void it('holds back the last chunk and fails on a mismatch', async () => {
    const ok: Buffer[] = [];
    await pipeline(
      Readable.from([data.subarray(0, 5), data.subarray(5)]),
      new VerifyingStream(parseIntegrity(sri) as never),
      async (src: AsyncIterable<unknown>) => {
        for await (const c of src) ok.push(c as Buffer);
      },
    );
    assert.deepEqual(Buffer.concat(ok), data);
    const got: Buffer[] = [];
    await assert.rejects(
      pipeline(
        Readable.from([data.subarray(0, 5), Buffer.from('tampered')]),
        new VerifyingStream(parseIntegrity(sri) as never),
        async (src: AsyncIterable<unknown>) => {
          for await (const c of src) got.push(c as Buffer);
        },
      ),
      IntegrityMismatch,
    );
    assert.ok(!Buffer.concat(got).includes('tampered'), 'the final chunk never left');
  });
});
