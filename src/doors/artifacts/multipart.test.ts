import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { boundaryOf, parseMultipart } from './multipart.ts';

async function* chunks(data: Buffer, sizes: readonly number[]): AsyncGenerator<Uint8Array> {
  let at = 0;
  let i = 0;
  while (at < data.length) {
    const n = Math.max(1, sizes[i % sizes.length] ?? 1);
    yield data.subarray(at, at + n);
    at += n;
    i += 1;
  }
}

interface Field {
  readonly name: string;
  readonly fileName?: string;
  readonly value: Buffer;
}

function encode(fields: readonly Field[], boundary: string): Buffer {
  const parts: Buffer[] = [Buffer.from('preamble\r\n')];
  for (const f of fields) {
    const disposition = `form-data; name="${f.name}"${f.fileName === undefined ? '' : `; filename="${f.fileName}"`}`;
    parts.push(
      Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n\r\n`),
      f.value,
      Buffer.from('\r\n'),
    );
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(parts);
}

async function decode(data: Buffer, boundary: string, sizes: readonly number[]) {
  const out: { name: string; fileName?: string; value: Buffer }[] = [];
  for await (const part of parseMultipart(chunks(data, sizes), boundary)) {
    const bufs: Buffer[] = [];
    for await (const b of part.body) bufs.push(b);
    out.push({
      name: part.name,
      ...(part.fileName === undefined ? {} : { fileName: part.fileName }),
      value: Buffer.concat(bufs),
    });
  }
  return out;
}

const isInvalid = (error: unknown) => (error as { code?: string }).code === 'GW_ERR_ARTIFACTS_UPLOAD_INVALID';

/** A one-field form whose part header block is `size` bytes (delimiter line end to blank line). */
function withHeaders(size: number): Buffer {
  const head = 'Content-Disposition: form-data; name="a"\r\nX-Pad: ';
  const block = head + 'p'.repeat(size - head.length);
  return Buffer.from(`--bnd\r\n${block}\r\n\r\nvalue\r\n--bnd--\r\n`);
}

const headersTooLong = (error: unknown) =>
  isInvalid(error) && /headers are longer than 16384 bytes/.test((error as Error).message);

void describe('multipart/form-data parser', () => {
  void it('decodes what it encodes for any content and any chunking', async () => {
    const boundary = 'XyZ-boundary-123';
    // Bodies draw from an alphabet rich in boundary fragments, CR and LF to stress delimiter search.
    const byteArb = fc.constantFrom(...Buffer.from(`\r\n-XyZbound${boundary}a`));
    const fieldArb = fc.record({
      name: fc.constantFrom('name', 'version', 'file'),
      fileName: fc.option(fc.constantFrom('a.tgz', 'b.bin'), { nil: undefined }),
      value: fc.array(byteArb, { maxLength: 300 }).map((a) => Buffer.from(a)),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fieldArb, { minLength: 1, maxLength: 4 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 }),
        async (fields, sizes) => {
          const clean = fields.map((f) =>
            f.fileName === undefined
              ? { name: f.name, value: f.value }
              : { name: f.name, fileName: f.fileName, value: f.value },
          );
          assert.deepEqual(await decode(encode(clean, boundary), boundary, sizes), clean);
        },
      ),
      { numRuns: 200 },
    );
  });

  void it('refuses bodies without boundary, cut short or without a name', async () => {
    const b = 'bnd';
    await assert.rejects(decode(Buffer.from('no boundary here'), b, [4]), isInvalid);
    await assert.rejects(
      decode(Buffer.from('--bnd\r\nContent-Disposition: form-data; name="a"\r\n\r\nvalue'), b, [3]),
      isInvalid,
    );
    await assert.rejects(
      decode(Buffer.from('--bnd\r\nContent-Type: text/plain\r\n\r\nv\r\n--bnd--'), b, [3]),
      isInvalid,
    );
    await assert.rejects(decode(Buffer.from(`--bnd\r\n${'x'.repeat(20_000)}`), b, [1000]), isInvalid);
  });

  void it('limits part headers to 16 KiB however the chunks split them', async () => {
    // One chunk holding all, the end of the headers in the second chunk, many smaller pieces.
    for (const sizes of [[1 << 20], [10_000], [4096], [977]]) {
      const at = `chunks of ${sizes[0]}`;
      assert.deepEqual(
        await decode(withHeaders(16 * 1024), 'bnd', sizes),
        [{ name: 'a', value: Buffer.from('value') }],
        at,
      );
      await assert.rejects(decode(withHeaders(16 * 1024 + 1), 'bnd', sizes), headersTooLong, at);
      await assert.rejects(decode(withHeaders(20_000), 'bnd', sizes), headersTooLong, at);
    }
  });

  void it('reads the boundary parameter', () => {
    assert.equal(boundaryOf('multipart/form-data; boundary=abc'), 'abc');
    assert.equal(boundaryOf('multipart/form-data; charset=utf-8; boundary="a b"'), 'a b');
    assert.equal(boundaryOf('application/octet-stream'), undefined);
    assert.equal(boundaryOf(undefined), undefined);
    assert.throws(() => boundaryOf('multipart/form-data'), /no boundary/);
    assert.throws(() => boundaryOf('multipart/form-data; charset=utf-8'), /no boundary/);
  });
});
