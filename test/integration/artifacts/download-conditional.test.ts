import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { parseExposition, sampleValue } from '#core/metrics';
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

  void it('answers 412 when If-Match names no current representation (RFC 9110 13.1.1)', async () => {
    await using h = await startDoor();
    const data = randomBytes(50_000);
    const up = await h.call('admin', 'POST', '/api/artifacts?repository=team&name=m&version=1', data);
    const id = String(up.json()['id']);
    const path = `/api/artifacts/${id}/download`;
    const etag = `"sha256:${createHash('sha256').update(data).digest('hex')}"`;
    const other = `"sha256:${'0'.repeat(64)}"`;
    for (const method of ['GET', 'HEAD']) {
      // The tag, `*`, and a list holding it: the download goes on (a Range too).
      for (const field of [etag, '*', `${other}, ${etag}`]) {
        const res = await h.call('admin', method, path, undefined, { 'if-match': field });
        assert.equal(res.status, 200, `${method} If-Match: ${field}`);
        assert.deepEqual(res.body, method === 'GET' ? data : Buffer.alloc(0));
      }
      const ranged = await h.call('admin', method, path, undefined, { 'if-match': etag, range: 'bytes=0-9' });
      assert.equal(ranged.status, 206);
      // Another tag, a list without it, and its weak form (If-Match compares strongly): 412.
      for (const field of [other, `${other}, W/"x"`, `W/${etag}`]) {
        const res = await h.call('admin', method, path, undefined, { 'if-match': field });
        assert.equal(res.status, 412, `${method} If-Match: ${field}`);
        assert.equal(res.headers['etag'], etag);
        if (method === 'GET') assert.equal(res.json()['code'], 'GW_ERR_ARTIFACTS_PRECONDITION_FAILED');
      }
    }
    // A ticket download is a POST: an If-None-Match naming the artifact fails there instead of
    // answering 304. Preconditions are weighed once the ticket is redeemed: each try takes one.
    const ticketOf = async () =>
      String((await h.call('admin', 'POST', `/api/artifacts/${id}/download-tickets`)).json()['ticket']);
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const post = (ticket: string, extra: Record<string, string>) =>
      h.call('anonymous', 'POST', path, new URLSearchParams({ ticket }).toString(), { ...form, ...extra });
    assert.equal((await post(await ticketOf(), { 'if-none-match': etag })).status, 412);
    assert.equal((await post(await ticketOf(), { 'if-none-match': other })).status, 200);
    assert.equal((await post(await ticketOf(), { 'if-match': other })).status, 412);
    // Every refused download is audited (as a refusal, with the precondition) and counted.
    const refused = (await h.core.audit.query({ action: 'artifacts.download' })).events.filter(
      (e) => e.details?.['precondition'] !== undefined,
    );
    assert.equal(refused.length, 2 * 3 + 2);
    assert.ok(refused.every((e) => e.decision === 'deny' && /ETag/.test(e.reason ?? '')));
    assert.deepEqual(
      refused.map((e) => String(e.details?.['precondition'])).toSorted((a, b) => a.localeCompare(b)),
      [...Array(7).fill('if-match'), 'if-none-match'],
    );
    const metrics = await h.call('admin', 'GET', '/metrics');
    assert.match(
      metrics.body.toString('utf8'),
      /artifacts_downloads_total\{result="precondition_failed"\} 8\b/,
    );
  });
  void it('answers HEAD with the headers of the download, without reading the artifact or recording a download', async () => {
    await using h = await startDoor();
    const data = randomBytes(300_000);
    const up = await h.call('admin', 'POST', '/api/artifacts?repository=team&name=h&version=1', data);
    const path = `/api/artifacts/${String(up.json()['id'])}/download`;
    const etag = `"sha256:${createHash('sha256').update(data).digest('hex')}"`;
    for (const range of [undefined, 'bytes=0-9']) {
      const head = await h.call('admin', 'HEAD', path, undefined, range === undefined ? {} : { range });
      assert.equal(head.status, range === undefined ? 200 : 206);
      assert.equal(head.headers['etag'], etag);
      assert.equal(head.headers['content-length'], range === undefined ? String(data.length) : '10');
      assert.equal(head.body.length, 0);
    }
    // Build tools ask HEAD before every GET: each was audited and counted as a download, with
    // the bytes of a decrypted first segment that never left.
    const metric = async (name: string, labels: Record<string, string> = {}) =>
      sampleValue(
        parseExposition((await h.core.metrics.render()).body),
        `gatehouse_artifacts_${name}`,
        labels,
      ) ?? 0;
    const downloads = async () =>
      (await h.core.audit.query({ action: 'artifacts.download' })).events.filter(
        (e) => e.decision === 'allow',
      );
    assert.equal((await downloads()).length, 0);
    assert.equal(await metric('bytes_out_total'), 0);
    assert.equal(await metric('downloads_total', { result: 'ok' }), 0);
    const got = await h.call('admin', 'GET', path);
    assert.deepEqual(got.body, data);
    assert.equal((await downloads()).length, 1);
    assert.equal(await metric('bytes_out_total'), data.length);
    assert.equal(await metric('downloads_total', { result: 'ok' }), 1);
  });
});
