import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { isGatewayError } from '#core/errors';
import { PackumentProcessor } from './packument-processor.ts';

// A threshold of one byte sends every document through the worker thread.
const processor = new PackumentProcessor({ threshold: 1, workers: 1 });
after(() => processor.close());

const doc = JSON.stringify({
  name: 'p',
  'dist-tags': { latest: '2.0.0' },
  versions: { '1.0.0': { dist: { tarball: 'http://u/p-1.0.0.tgz' } }, '2.0.0': { dist: {} } },
  time: { '1.0.0': '2020-01-01T00:00:00.000Z', '2.0.0': '2020-02-01T00:00:00.000Z' },
});
const meta = { contentType: 'application/json', fetchedAt: 0, uplink: 'u', filtered: 1, total: 2 };

async function* chunks(text: string, size = 7): AsyncGenerator<Buffer> {
  const bytes = Buffer.from(text);
  for (let at = 0; at < bytes.length; at += size) yield Buffer.from(bytes.subarray(at, at + size));
}

const run = (text: string) =>
  processor.processStream(
    chunks(text),
    {
      name: 'p',
      tarballBase: 'http://gw/npm/p/-/',
      limit: 1 << 20,
      tooLarge: () => new Error('too large'),
      owned: true,
    },
    async () => ({ denied: ['2.0.0'], meta }),
  );

void describe('packument processor (worker path)', () => {
  void it('answers with the spliced gzip form first, then every form and the raw bytes', async () => {
    const p = await run(doc);
    assert.deepEqual(
      p.summary.versions.map((v) => v.version),
      ['1.0.0', '2.0.0'],
    );
    assert.equal(p.full.identity.length, 0, 'no identity bytes on the answer path');
    const full = JSON.parse(gunzipSync(p.full.gzip).toString('utf8')) as {
      versions: object;
      'dist-tags': object;
    };
    assert.deepEqual(Object.keys(full.versions), ['1.0.0']);
    assert.deepEqual(full['dist-tags'], { latest: '1.0.0' });
    assert.equal(p.full.meta.splicedGzip, true);
    const all = await p.compressed;
    assert.equal(all.full.identity.toString('utf8'), gunzipSync(p.full.gzip).toString('utf8'));
    // The whole-document gzip replaces the spliced one, under its own ETag suffix.
    assert.equal(all.full.meta.splicedGzip, undefined);
    assert.deepEqual(gunzipSync(all.full.gzip), all.full.identity);
    assert.deepEqual(gunzipSync(all.abbreviated.gzip), all.abbreviated.identity);
    assert.ok(all.full.br.length > 0 && all.abbreviated.br.length > 0);
    assert.equal((await p.raw).toString('utf8'), doc);
  });

  void it('refuses a truncated document and bytes after its end, as invalid upstream metadata', async () => {
    for (const bad of [doc.slice(0, -1), `${doc}  x`, `${doc}{}`]) {
      await assert.rejects(
        run(bad),
        (e: unknown) => isGatewayError(e) && e.code === 'GW_ERR_REGISTRY_UPSTREAM_INVALID',
        bad.slice(-5),
      );
    }
    // The worker is still usable afterwards.
    assert.equal((await run(doc)).summary.versions.length, 2);
  });
});
