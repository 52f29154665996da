import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isGatewayError } from '#core/errors';
import { makeTar, makeZip } from './fixtures.ts';
import { ScanBudget } from './limits.ts';
import { fromPurl, manifestParser, purlOf } from './manifests.ts';
import { readTar } from './tar.ts';
import { bufferAccess, listZipItems, openZipItem } from './zip.ts';

const MANIFESTS = [
  'a/package-lock.json',
  'yarn.lock',
  'pnpm-lock.yaml',
  'requirements.txt',
  'poetry.lock',
  'Pipfile.lock',
  'go.mod',
  'go.sum',
  'pom.xml',
  'x/pom.properties',
  'Cargo.lock',
  'Gemfile.lock',
  'composer.lock',
  'x.cdx.json',
  'y.spdx.json',
  'package/package.json',
  'z.dist-info/METADATA',
];

const allowed = (codes: readonly string[]) => (error: unknown) =>
  isGatewayError(error) && codes.includes(error.code);

async function drain(source: AsyncIterable<Buffer>): Promise<number> {
  let n = 0;
  for await (const c of source) n += c.length;
  return n;
}

async function* once(data: Buffer): AsyncGenerator<Buffer> {
  yield data;
}

const budget = () =>
  new ScanBudget({
    maxEntries: 1000,
    maxExpandedSize: 1 << 24,
    maxDepth: 3,
    maxRatio: 200,
    maxBufferedFile: 1 << 24,
  });

void describe('scanner parsers on arbitrary input', () => {
  void it('manifest parsers return packages or throw GW_ERR_ARTIFACTS_MANIFEST_INVALID, nothing else', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...MANIFESTS),
        fc.oneof(
          fc.string(),
          fc.json(),
          fc.constantFrom('[[package]]\nname="x"', '{"packages":5}', 'require (\nx\n'),
        ),
        (path, text) => {
          const parser = manifestParser(path);
          assert.ok(parser, path);
          try {
            const out = parser(path, text);
            for (const p of out) assert.equal(typeof p.version, 'string');
          } catch (error) {
            assert.ok(allowed(['GW_ERR_ARTIFACTS_MANIFEST_INVALID'])(error), String(error));
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  void it('the tar reader round-trips what the builder writes and refuses mutations cleanly', async () => {
    const fileArb = fc.record({
      name: fc.stringMatching(/^[a-z0-9/._-]{1,150}$/),
      data: fc.uint8Array({ maxLength: 2000 }).map((a) => Buffer.from(a)),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fileArb, { minLength: 1, maxLength: 5 }),
        fc.nat(),
        fc.nat(255),
        async (files, pos, value) => {
          const tar = makeTar(files);
          const seen: string[] = [];
          for await (const e of readTar(once(tar))) {
            seen.push(e.name);
            assert.equal(await drain(e.body), e.size);
          }
          assert.deepEqual(
            seen,
            files.map((f) => f.name),
          );
          const bad = Buffer.from(tar);
          bad[pos % bad.length] = value;
          try {
            for await (const e of readTar(once(bad))) await drain(e.body);
          } catch (error) {
            assert.ok(allowed(['GW_ERR_ARTIFACTS_ARCHIVE_INVALID'])(error), String(error));
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  void it('the zip reader survives random corruption with a clean error', async () => {
    const zip = makeZip([
      { name: 'a.txt', data: 'hello '.repeat(500) },
      { name: 'b/c.txt', data: 'world' },
    ]);
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.nat(255), async (pos, value) => {
        const bad = Buffer.from(zip);
        bad[pos % bad.length] = value;
        try {
          const access = bufferAccess(bad);
          for (const item of await listZipItems(access))
            await drain(openZipItem(access, item, budget(), item.name));
        } catch (error) {
          assert.ok(
            allowed(['GW_ERR_ARTIFACTS_ARCHIVE_INVALID', 'GW_ERR_ARTIFACTS_ARCHIVE_LIMIT'])(error),
            String(error),
          );
        }
      }),
      { numRuns: 300 },
    );
  });

  void it('package URLs round-trip', () => {
    for (const p of [
      { ecosystem: 'npm', name: '@scope/pkg', version: '1.0.0' },
      { ecosystem: 'maven', name: 'org.apache:commons', version: '3.1' },
      { ecosystem: 'go', name: 'golang.org/x/net', version: 'v0.1.0' },
      { ecosystem: 'pypi', name: 'requests', version: '2.0+local' },
    ] as const) {
      assert.deepEqual(fromPurl(purlOf(p), 'x'), { ...p, path: 'x' });
    }
  });
});
