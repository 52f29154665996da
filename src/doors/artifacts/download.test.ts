import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { etagListMatches } from './download.ts';

const ETAG = `"sha256:${'ab'.repeat(32)}"`;
const OTHER = `"sha256:${'cd'.repeat(32)}"`;

void describe('entity-tag lists (If-Match, If-None-Match)', () => {
  void it('matches `*`, single tags and lists, weakly or strongly (RFC 9110 8.8.3.2)', () => {
    for (const [field, weak, strong] of [
      ['*', true, true],
      [' * ', true, true],
      [ETAG, true, true],
      [`W/${ETAG}`, true, false],
      [`${OTHER}, ${ETAG}`, true, true],
      [`${OTHER},W/${ETAG} , "x"`, true, false],
      [`"a,b", ${ETAG}`, true, true],
      // Empty list elements are allowed (RFC 9110 5.6.1).
      [`, ${ETAG}`, true, true],
      [`${OTHER},, ${ETAG},`, true, true],
      [OTHER, false, false],
      [`${OTHER}, W/${OTHER}`, false, false],
      ['', false, false],
      // Not entity-tags: unquoted, lower-case weak prefix, a list that breaks off before the tag.
      [ETAG.slice(1, -1), false, false],
      [`w/${ETAG}`, false, false],
      [`garbage ${ETAG}`, false, false],
      [`${OTHER} junk, ${ETAG}`, false, false],
    ] as const) {
      assert.equal(etagListMatches(field, ETAG, 'weak'), weak, `weak: ${field}`);
      assert.equal(etagListMatches(field, ETAG, 'strong'), strong, `strong: ${field}`);
    }
  });
});
