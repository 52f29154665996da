import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import { MalformedPackument, renderPackument, summarize } from './packument.ts';
import { PackumentStream } from './packument-stream.ts';

const tricky = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom(
    '{"a":[1,2]}',
    'quote " and \\ backslash',
    '}]},{["',
    'ünïcødé ☃ 𝄞',
    '\n\t',
    'ends with \\',
    '\\"\\\\"\\',
  ),
);
const versionArb = fc
  .tuple(fc.nat({ max: 3 }), fc.nat({ max: 3 }), fc.nat({ max: 3 }))
  .map(([a, b, c]) => `${a}.${b}.${c}`);
const docArb = fc
  .record({
    versions: fc.uniqueArray(versionArb, { maxLength: 8 }),
    text: tricky,
    deny: fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
    readme: tricky,
    spaces: fc.boolean(),
  })
  .map((r) => {
    const versions: Record<string, unknown> = {};
    const time: Record<string, string> = {
      created: '2020-01-01T00:00:00.000Z',
      modified: '2021-01-01T00:00:00.000Z',
    };
    r.versions.forEach((v, i) => {
      versions[v] = {
        name: 'p',
        version: v,
        description: r.text,
        scripts: { x: r.text },
        dist: { integrity: `sha512-${i}`, shasum: 'a'.repeat(40), tarball: `http://u/p-${v}.tgz` },
      };
      time[v] = new Date(Date.UTC(2020, 0, 1 + i)).toISOString();
    });
    const doc = {
      _id: 'p',
      name: 'p',
      'dist-tags': { latest: r.versions.at(-1) ?? '0.0.0', odd: r.text },
      versions,
      time,
      readme: r.readme,
      weird: [r.text, { x: r.text }],
    };
    const denied = new Set(r.versions.filter((_, i) => r.deny[i]));
    return { doc, denied, text: JSON.stringify(doc, null, r.spaces ? 2 : undefined) };
  });

function feed(text: string, cuts: readonly number[], fragmentChars = 0): PackumentStream {
  const bytes = Buffer.from(text);
  const s = new PackumentStream('p', 'http://gw/npm/p/-/', 16, fragmentChars);
  let at = 0;
  for (const c of [...cuts].sort((a, b) => a - b)) {
    const to = Math.min(bytes.length, c % (bytes.length + 1));
    if (to > at) {
      s.push(bytes.subarray(at, to));
      at = to;
    }
  }
  s.push(bytes.subarray(at));
  return s;
}

void describe('streaming packument reader', () => {
  void it('agrees with JSON.parse-based filtering for any chunking (property)', () => {
    fc.assert(
      fc.property(docArb, fc.array(fc.nat(), { maxLength: 20 }), ({ doc, denied, text }, cuts) => {
        const stream = feed(text, cuts);
        const summary = stream.end();
        const reference = summarize(JSON.parse(text), 'p');
        const byVersion = (s: typeof summary) =>
          [...s.versions].sort((a, b) => a.version.localeCompare(b.version));
        assert.deepEqual(byVersion(summary), byVersion(reference));
        assert.deepEqual(summary.distTags, reference.distTags);
        const got = stream.render(denied);
        const want = renderPackument(JSON.parse(text), reference, {
          denied,
          tarballBase: 'http://gw/npm/p/-/',
        });
        assert.deepEqual(JSON.parse(got.full), JSON.parse(want.full));
        assert.deepEqual(JSON.parse(got.abbreviated), JSON.parse(want.abbreviated));
        assert.equal(doc.name, 'p');
      }),
    );
  });

  void it('splices gzip that decompresses to exactly the rendered bytes (property)', () => {
    fc.assert(
      fc.property(
        docArb,
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.integer({ min: 1, max: 400 }),
        ({ denied, text }, cuts, fragmentChars) => {
          const stream = feed(text, cuts, fragmentChars);
          stream.end();
          const plain = stream.render(denied);
          const zipped = stream.renderGzip(denied);
          assert.equal(gunzipSync(zipped.full).toString('utf8'), plain.full);
          assert.equal(gunzipSync(zipped.abbreviated).toString('utf8'), plain.abbreviated);
        },
      ),
    );
  });

  void it('splices around superseded duplicates and a repeated "versions" object', () => {
    const text =
      '{"name":"p","versions":{"0.1.0":{"v":0}},"versions":{"1.0.0":{"v":1},"2.0.0":{"v":2},"1.0.0":{"v":3},"3.0.0":7},"dist-tags":{"latest":"2.0.0"}}';
    for (const fragmentChars of [1, 20, 1000]) {
      const s = feed(text, [30, 61], fragmentChars);
      s.end();
      for (const denied of [new Set<string>(), new Set(['2.0.0']), new Set(['1.0.0', '2.0.0'])]) {
        const full = gunzipSync(s.renderGzip(denied).full).toString('utf8');
        assert.equal(full, s.render(denied).full);
        const doc = JSON.parse(full) as { versions: Record<string, { v: number }> };
        assert.deepEqual(
          Object.keys(doc.versions),
          ['2.0.0', '1.0.0'].filter((v) => !denied.has(v)),
        );
        if (!denied.has('1.0.0')) assert.equal(doc.versions['1.0.0']?.v, 3);
      }
    }
  });

  void it('refuses truncated, non-object, trailing and mislabelled documents', () => {
    const good = JSON.stringify({ name: 'p', versions: { '1.0.0': { dist: {} } } });
    for (const bad of [
      good.slice(0, -1),
      good.slice(0, 20),
      '[1,2]',
      `${good}x`,
      JSON.stringify({ name: 'q', versions: {} }),
      '{"name":"p","versions":{"1.0.0":{"a":}}}',
      '{"name":"p","versions":7}',
      '{"name":"p","versions":{"1.0.0":{}},"versions":[]}',
      '{"name":"p","versions":{"1.0.0":{}},"versions":null}',
    ]) {
      assert.throws(
        () => {
          const s = new PackumentStream('p', 'http://gw/');
          s.push(Buffer.from(bad));
          s.end();
        },
        MalformedPackument,
        bad,
      );
    }
  });

  void it('lets a later duplicate key win, as JSON.parse does', () => {
    const text =
      '{"name":"p","versions":{"1.0.0":{"v":1}},"versions":{"2.0.0":{"v":2},"2.0.0":{"v":3}},"dist-tags":{"latest":"2.0.0"}}';
    const s = new PackumentStream('p', 'http://gw/');
    s.push(Buffer.from(text));
    assert.deepEqual(
      s.end().versions.map((v) => v.version),
      ['2.0.0'],
    );
    assert.equal(
      (JSON.parse(s.render(new Set()).full) as { versions: Record<string, { v: number }> }).versions['2.0.0']
        ?.v,
      3,
    );
  });

  void it('derives strong ETags from its inputs, independent of chunking', () => {
    const text = JSON.stringify({
      name: 'p',
      versions: { '1.0.0': { dist: {} }, '2.0.0': { dist: {} } },
      'dist-tags': {},
    });
    const a = feed(text, [3, 10]);
    const b = feed(text, [20]);
    a.end();
    b.end();
    assert.equal(a.etag('full', new Set()), b.etag('full', new Set()));
    assert.notEqual(a.etag('full', new Set()), a.etag('full', new Set(['2.0.0'])));
    assert.notEqual(a.etag('full', new Set()), a.etag('abbreviated', new Set()));
    const c = feed(text.replace('2.0.0', '3.0.0'), []);
    c.end();
    assert.notEqual(a.etag('full', new Set()), c.etag('full', new Set()));
  });
});
