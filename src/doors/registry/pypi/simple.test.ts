import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  negotiate,
  parseSimpleHtml,
  parseSimpleJson,
  renderSimpleHtml,
  renderSimpleJson,
  type SimpleProject,
  versionOfFile,
} from './simple.ts';

const hex = fc.stringMatching(/^[0-9a-f]{64}$/);
const fileArb = fc.record({
  version: fc.tuple(fc.nat({ max: 9 }), fc.nat({ max: 9 })).map(([a, b]) => `${a}.${b}`),
  wheel: fc.boolean(),
  sha256: hex,
  requiresPython: fc.option(fc.constantFrom('>=3.8', '>=3.7,<4', '!=3.0.*'), { nil: undefined }),
  yanked: fc.option(fc.oneof(fc.constant(true as const), fc.constantFrom('broken build', 'use "2.0" & <3')), {
    nil: undefined,
  }),
  meta: fc.option(hex, { nil: undefined }),
});

void describe('PyPI simple pages', () => {
  void it('finds versions in wheel and sdist names, legacy dashes included', () => {
    assert.equal(versionOfFile('python_dateutil-2.8.2-py2.py3-none-any.whl', 'python-dateutil'), '2.8.2');
    assert.equal(versionOfFile('python-dateutil-2.8.2.tar.gz', 'Python_Dateutil'), '2.8.2');
    assert.equal(versionOfFile('foo-1.0.zip', 'foo'), '1.0');
    // PEP 440 normalized, as PyPI and the vulnerability data name the release.
    assert.equal(versionOfFile('foo-1.0.RC1.tar.gz', 'foo'), '1.0rc1');
    assert.equal(versionOfFile('foo-1.0-1.tar.gz', 'foo'), '1.0.post1');
    assert.equal(versionOfFile('other-1.0.tar.gz', 'foo'), undefined);
    assert.equal(versionOfFile('foo-1.0.exe', 'foo'), undefined);
  });

  void it('keeps hashes, requires-python, yanked and core metadata through HTML and JSON (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fileArb, { selector: (f) => `${f.version}${f.wheel}`, maxLength: 6 }),
        (raw) => {
          const project: SimpleProject = {
            name: 'demo-pkg',
            files: raw.map((f) => ({
              filename: f.wheel ? `demo_pkg-${f.version}-py3-none-any.whl` : `demo-pkg-${f.version}.tar.gz`,
              url: `http://up/files/${f.version}`,
              version: f.version,
              sha256: f.sha256,
              ...(f.requiresPython === undefined ? {} : { requiresPython: f.requiresPython }),
              ...(f.yanked === undefined ? {} : { yanked: f.yanked }),
              ...(f.meta === undefined ? {} : { coreMetadata: { sha256: f.meta } }),
            })),
          };
          const o = {
            fileBase: 'http://gw/pypi/files/demo-pkg/',
            refused: new Map<string, string>(),
            mode: 'yanked' as const,
          };
          const fromHtml = parseSimpleHtml(
            renderSimpleHtml(project, o),
            'demo-pkg',
            'http://gw/pypi/simple/demo-pkg/',
          );
          const fromJson = parseSimpleJson(
            renderSimpleJson(project, o),
            'demo-pkg',
            'http://gw/pypi/simple/demo-pkg/',
          );
          const strip = (p: SimpleProject) => p.files.map(({ url: _u, ...rest }) => rest);
          const expected = project.files.map(({ url: _u, ...rest }) => rest);
          assert.deepEqual(strip(fromHtml), expected);
          assert.deepEqual(strip(fromJson), expected);
          for (const f of [...fromHtml.files, ...fromJson.files])
            assert.ok(f.url.startsWith('http://gw/pypi/files/demo-pkg/'));
        },
      ),
    );
  });

  void it('marks refused versions yanked with the reason, or hides them', () => {
    const p: SimpleProject = {
      name: 'x',
      files: [{ filename: 'x-1.0.tar.gz', url: 'http://u/x', version: '1.0', sha256: 'a'.repeat(64) }],
    };
    const refused = new Map([['1.0', 'too new']]);
    const json = JSON.parse(renderSimpleJson(p, { fileBase: 'http://g/', refused, mode: 'yanked' }));
    assert.equal(json.files[0].yanked, 'Refused by Gatehouse: too new');
    assert.equal(
      JSON.parse(renderSimpleJson(p, { fileBase: 'http://g/', refused, mode: 'hidden' })).files.length,
      0,
    );
  });

  void it('reads raw > in quoted values, unquoted values and a bare data-yanked', () => {
    const page = parseSimpleHtml(
      [
        '<html><body>',
        '<a href="/f/p-1.0.tar.gz#sha256=' +
          'a'.repeat(64) +
          '" data-requires-python=">=3.8">p-1.0.tar.gz</a>',
        '<a href=/f/p-1.1.tar.gz data-yanked>p-1.1.tar.gz</a>',
        "<a data-yanked='broken build' href='/f/p-1.2.tar.gz'>p-1.2.tar.gz</a>",
        '</body></html>',
      ].join('\n'),
      'p',
      'http://u/simple/p/',
    );
    assert.deepEqual(
      page.files.map((f) => [f.filename, f.url, f.requiresPython, f.yanked]),
      [
        ['p-1.0.tar.gz', 'http://u/f/p-1.0.tar.gz', '>=3.8', undefined],
        ['p-1.1.tar.gz', 'http://u/f/p-1.1.tar.gz', undefined, true],
        ['p-1.2.tar.gz', 'http://u/f/p-1.2.tar.gz', undefined, 'broken build'],
      ],
    );
  });

  void it('rejects pages that are neither JSON nor HTML', () => {
    assert.throws(() => parseSimpleJson('{"name":"x"}', 'x', 'http://u/'), SyntaxError);
    assert.throws(() => parseSimpleJson('<html>', 'x', 'http://u/'), SyntaxError);
    assert.throws(() => parseSimpleHtml('just text', 'x', 'http://u/'), SyntaxError);
  });

  void it('negotiates PEP 691 media types and refuses the rest', () => {
    assert.deepEqual(negotiate('application/vnd.pypi.simple.v1+json, text/html;q=0.1'), {
      variant: 'json',
      type: 'application/vnd.pypi.simple.v1+json',
    });
    assert.deepEqual(negotiate('application/vnd.pypi.simple.v1+html'), {
      variant: 'html',
      type: 'application/vnd.pypi.simple.v1+html',
    });
    assert.deepEqual(negotiate('text/html'), { variant: 'html', type: 'text/html' });
    assert.deepEqual(negotiate(undefined), { variant: 'html', type: 'text/html' });
    assert.deepEqual(negotiate('*/*'), { variant: 'html', type: 'text/html' });
    assert.equal(negotiate('application/json'), undefined);
    assert.equal(negotiate('application/vnd.pypi.simple.v1+json;q=0'), undefined);
  });
});
