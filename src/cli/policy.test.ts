import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePackageSpec } from './policy.ts';

void describe('policy test package specs', () => {
  void it('splits NAME@VERSION, @scope/NAME@VERSION and NAME==VERSION', () => {
    assert.deepEqual(parsePackageSpec('lodash@4.17.20'), { name: 'lodash', version: '4.17.20' });
    assert.deepEqual(parsePackageSpec('@scope/pkg@1.0.0'), { name: '@scope/pkg', version: '1.0.0' });
    assert.deepEqual(parsePackageSpec('requests==2.31.0', 'pypi'), { name: 'requests', version: '2.31.0' });
  });

  void it('takes an OCI image as REPOSITORY:TAG or REPOSITORY@DIGEST', () => {
    assert.deepEqual(parsePackageSpec('hub/team/app:1.0', 'oci'), { name: 'hub/team/app', version: '1.0' });
    const digest = `sha256:${'a'.repeat(64)}`;
    assert.deepEqual(parsePackageSpec(`hub/team/app@${digest}`, 'oci'), {
      name: 'hub/team/app',
      version: digest,
    });
    // A port before the path is no tag; a colon form for other ecosystems is no version.
    assert.throws(() => parsePackageSpec('registry.test:5000/team/app', 'oci'), /REPOSITORY:TAG/);
    assert.throws(() => parsePackageSpec('hub/team/app:', 'oci'), /REPOSITORY:TAG/);
    assert.throws(() => parsePackageSpec('lodash:4.17.20', 'npm'), /Expected NAME@VERSION/);
  });
});
