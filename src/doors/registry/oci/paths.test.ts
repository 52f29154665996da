import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isGatewayError } from '#core/errors';
import { parseOciPath } from './paths.ts';

const D = `sha256:${'a'.repeat(64)}`;

void describe('OCI paths', () => {
  void it('parses manifests, blobs and tags under an uplink prefix', () => {
    assert.deepEqual(parseOciPath('hub/library/app/manifests/v1.2'), {
      kind: 'manifest',
      uplink: 'hub',
      repo: 'library/app',
      reference: 'v1.2',
    });
    assert.deepEqual(parseOciPath(`hub/app/manifests/${D}`), {
      kind: 'manifest',
      uplink: 'hub',
      repo: 'app',
      reference: D,
    });
    assert.deepEqual(parseOciPath(`hub/app/blobs/${D}`), {
      kind: 'blob',
      uplink: 'hub',
      repo: 'app',
      reference: D,
    });
    assert.deepEqual(parseOciPath('hub/a/b/tags/list'), { kind: 'tags', uplink: 'hub', repo: 'a/b' });
    assert.equal(parseOciPath('hub/app/blobs/uploads/'), undefined);
  });

  void it('refuses malformed names, tags and digests', () => {
    for (const bad of [
      'app/manifests/latest',
      'hub/App/manifests/x',
      'hub/a..b/manifests/x',
      'hub/-a/manifests/x',
      'hub/app/manifests/.x',
      `hub/app/manifests/${'x'.repeat(129)}`,
      'hub/app/blobs/latest',
      'hub/app/blobs/sha256:abc',
      `hub/app/manifests/md5:${'a'.repeat(32)}`,
      `hub/app/blobs/sha256:${'A'.repeat(64)}`,
    ])
      assert.throws(
        () => parseOciPath(bad),
        (e) => isGatewayError(e),
        bad,
      );
  });

  void it('throws only gateway errors on arbitrary input (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 100 }), (s) => {
        try {
          parseOciPath(s);
        } catch (e) {
          assert.ok(isGatewayError(e), String(e));
        }
      }),
      { numRuns: 2000 },
    );
  });
});
