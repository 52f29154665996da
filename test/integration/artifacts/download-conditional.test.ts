import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { startDoor } from './harness.ts';

void describe('conditional range downloads', () => {
  void it('serves the range only when If-Range names this ETag, else the whole artifact (RFC 9110 13.1.5)', async () => {
    await using h = await startDoor();
    const data = randomBytes(200_000);
    const up = await h.call('admin', 'POST', '/api/artifacts?repository=team&name=r&version=1', data);
    const path = `/api/artifacts/${String(up.json()['id'])}/download`;
    const etag = `"sha256:${createHash('sha256').update(data).digest('hex')}"`;
    const same = await h.call('admin', 'GET', path, undefined, { range: 'bytes=10-19', 'if-range': etag });
    assert.equal(same.status, 206);
    assert.deepEqual(same.body, data.subarray(10, 20));
    for (const validator of [`"sha256:${'0'.repeat(64)}"`, `W/${etag}`, 'Wed, 21 Oct 2015 07:28:00 GMT']) {
      const other = await h.call('admin', 'GET', path, undefined, {
        range: 'bytes=10-19',
        'if-range': validator,
      });
      assert.equal(other.status, 200, validator);
      assert.equal(other.headers['content-range'], undefined, validator);
      assert.deepEqual(other.body, data, validator);
    }
  });
});
