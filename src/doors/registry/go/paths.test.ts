import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isGatewayError } from '#core/errors';
import { checkModulePath, escapeGoPath, parseGoRequest, unescapeGoPath } from './paths.ts';

const refused = (fn: () => unknown) =>
  assert.throws(fn, (e) => isGatewayError(e) && e.code === 'GW_ERR_REGISTRY_NAME_INVALID');

void describe('GOPROXY paths', () => {
  void it('parses every request kind with case-encoded paths and versions', () => {
    assert.deepEqual(parseGoRequest('github.com/!azure/go-sdk/@v/list'), {
      kind: 'list',
      module: 'github.com/Azure/go-sdk',
      escaped: 'github.com/!azure/go-sdk',
    });
    assert.deepEqual(parseGoRequest('example.test/m/@latest'), {
      kind: 'latest',
      module: 'example.test/m',
      escaped: 'example.test/m',
    });
    for (const kind of ['info', 'mod', 'zip'] as const)
      assert.deepEqual(parseGoRequest(`example.test/m/v2/@v/v2.0.0-!r!c1.${kind}`), {
        kind,
        module: 'example.test/m/v2',
        escaped: 'example.test/m/v2',
        version: 'v2.0.0-RC1',
      });
    assert.equal(parseGoRequest('example.test/m/@v/v1.0.0.txt'), undefined);
    assert.equal(parseGoRequest('example.test/m'), undefined);
  });

  void it('refuses malformed module paths and versions', () => {
    for (const bad of [
      'Example.test/m/@v/list',
      'example.test/M/@v/list',
      'example.test/!/@v/list',
      'example.test/!1/@v/list',
      'example/m/@v/list',
      '-example.test/m/@v/list',
      'example.test/../etc/@v/list',
      'example.test//m/@v/list',
      'example.test/m./@v/list',
      'example.test/m%2f/@v/list',
      'example.test/a b/@v/list',
      '/@v/list',
      `example.test/${'a'.repeat(600)}/@v/list`,
    ])
      refused(() => parseGoRequest(bad));
    for (const bad of [
      'v1.0',
      'latest',
      'v1.0.0+build',
      'v01.0.0',
      'master',
      'v1.0.0-!',
      'V1.0.0',
      'v1.0.0+incompatible',
    ])
      refused(() => parseGoRequest(`example.test/m/@v/${bad}.info`));
  });

  void it('round-trips the case encoding and never lets upper case through (property)', () => {
    const elem = fc.stringMatching(/^[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,10}[A-Za-z0-9_~-]$/);
    const pathArb = fc
      .tuple(fc.stringMatching(/^[a-z0-9]{1,8}\.[a-z]{2,5}$/), fc.array(elem, { maxLength: 3 }))
      .map(([d, rest]) => [d, ...rest].join('/'))
      .filter((p) => !p.includes('..'));
    fc.assert(
      fc.property(pathArb, (p) => {
        const escaped = escapeGoPath(p);
        assert.ok(!/[A-Z]/.test(escaped));
        assert.equal(unescapeGoPath(escaped), p);
        assert.equal(checkModulePath(p), p);
        assert.equal(parseGoRequest(`${escaped}/@v/list`)?.module, p);
      }),
    );
  });

  void it('throws only the invalid-name error on arbitrary input (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (s) => {
        try {
          const r = parseGoRequest(s);
          if (r !== undefined) assert.equal(checkModulePath(r.module), r.module);
        } catch (e) {
          assert.ok(isGatewayError(e) && e.code === 'GW_ERR_REGISTRY_NAME_INVALID', String(e));
        }
      }),
      { numRuns: 2000 },
    );
  });
});
