import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { startDoor } from './harness.ts';

void describe('conditional downloads', () => {
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

  void it('answers 304 with the ETag and no body when If-None-Match names the artifact (RFC 9110 13.1.2)', async () => {
    await using h = await startDoor();
    const data = randomBytes(100_000);
    const up = await h.call('admin', 'POST', '/api/artifacts?repository=team&name=n&version=1', data);
    const path = `/api/artifacts/${String(up.json()['id'])}/download`;
    const etag = `"sha256:${createHash('sha256').update(data).digest('hex')}"`;
    const other = `"sha256:${'0'.repeat(64)}"`;
    // The conditions are weighed only once the download is allowed: a consumer may not
    // download a quarantined artifact, and a matching tag does not turn that into a 304.
    const denied = await h.call('consumer', 'GET', path, undefined, { 'if-none-match': etag });
    assert.equal(denied.status, 403);
    for (const method of ['GET', 'HEAD']) {
      // An exact tag, the weak form of it, `*`, a list holding it, and it before a Range.
      for (const [field, range] of [
        [etag, undefined],
        [`W/${etag}`, undefined],
        ['*', undefined],
        [`${other}, W/"x", ${etag}`, undefined],
        [etag, 'bytes=0-9'],
      ] as const) {
        const at = `${method} If-None-Match: ${field}${range === undefined ? '' : ` with Range ${range}`}`;
        const res = await h.call('admin', method, path, undefined, {
          'if-none-match': field,
          ...(range === undefined ? {} : { range }),
        });
        assert.equal(res.status, 304, at);
        assert.equal(res.headers['etag'], etag, at);
        assert.equal(res.body.length, 0, at);
      }
      // No tag of the list is this artifact's: the whole artifact as usual.
      for (const field of [other, `${other}, W/${other}`, `"sha256:${etag.slice(8, -1)}x"`]) {
        const res = await h.call('admin', method, path, undefined, { 'if-none-match': field });
        assert.equal(res.status, 200, `${method} If-None-Match: ${field}`);
        assert.equal(res.headers['etag'], etag);
        assert.equal(res.headers['content-length'], String(data.length));
        assert.deepEqual(res.body, method === 'GET' ? data : Buffer.alloc(0));
      }
    }
    const [notModified] = (await h.core.audit.query({ action: 'artifacts.download' })).events.filter(
      (e) => e.details?.['notModified'] === true,
    );
    assert.equal(notModified?.decision, 'allow');
  });
});
