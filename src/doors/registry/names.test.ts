import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { checkFileName, checkNpmName, checkPypiName } from './names.ts';

void describe('package names', () => {
  void it('accepts real npm names', () => {
    for (const n of ['lodash', '@babel/core', 'JSONStream', 'a.b-c_d~e', '@types/node'])
      assert.equal(checkNpmName(n), n);
  });

  void it('refuses traversal, separators and control characters in every ecosystem (property)', () => {
    const evil = fc
      .tuple(
        fc.string({ maxLength: 20 }),
        fc.constantFrom('..', '/', '\\', '\u0000', '%2f', ' ', '\n', '?', '#'),
        fc.string({ maxLength: 20 }),
      )
      .map(([a, bad, b]) => `${a}${bad}${b}`)
      .filter(
        (s) =>
          !/^@[^/]+\/[^/]+$/.test(s) ||
          ['..', '\\', '\u0000', ' ', '\n', '?', '#', '%'].some((c) => s.includes(c)),
      );
    fc.assert(
      fc.property(evil, (name) => {
        assert.throws(() => checkNpmName(name), { code: 'GW_ERR_REGISTRY_NAME_INVALID' });
        // PyPI names are compared normalized, so a name is either refused or becomes inert.
        let normalized: string | undefined;
        try {
          normalized = checkPypiName(name);
        } catch (error) {
          assert.equal((error as { code?: string }).code, 'GW_ERR_REGISTRY_NAME_INVALID');
        }
        if (normalized !== undefined) assert.match(normalized, /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/);
        assert.throws(() => checkFileName(name), { code: 'GW_ERR_REGISTRY_NAME_INVALID' });
      }),
    );
  });

  void it('normalizes PyPI names per PEP 503', () => {
    assert.equal(checkPypiName('Django_REST.framework'), 'django-rest-framework');
    assert.throws(() => checkPypiName('-leading'));
  });
});
