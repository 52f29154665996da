import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { startDoor } from './harness.ts';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

void describe('browser downloads by single-use ticket', () => {
  void it('a consumer downloads by form POST once; replays, strangers and URLs get nothing', async () => {
    await using h = await startDoor();
    const data = randomBytes(300_000);
    const up = await h.call('publisher', 'POST', '/api/artifacts?repository=team&name=t&version=1', data);
    assert.equal(up.status, 201);
    const id = String(up.json()['id']);

    // Quarantined: the ticket request already answers what the download would, as a problem.
    const early = await h.call('consumer', 'POST', `/api/artifacts/${id}/download-tickets`);
    assert.equal(early.status, 403);
    assert.equal(early.json()['code'], 'GW_ERR_ARTIFACTS_NOT_APPROVED');
    await h.door.scanQueue().drain();

    assert.equal((await h.call('anonymous', 'POST', `/api/artifacts/${id}/download-tickets`)).status, 401);
    assert.equal((await h.call('outsider', 'POST', `/api/artifacts/${id}/download-tickets`)).status, 403);
    const issued = await h.call('consumer', 'POST', `/api/artifacts/${id}/download-tickets`);
    assert.equal(issued.status, 201, issued.body.toString());
    assert.equal(issued.headers['cache-control'], 'no-store');
    const { ticket, action, field } = issued.json() as { ticket: string; action: string; field: string };
    assert.equal(action, `/api/artifacts/${id}/download`);
    assert.equal(field, 'ticket');

    // The ticket is never accepted from the query string.
    const inUrl = await h.call('anonymous', 'GET', `/api/artifacts/${id}/download?ticket=${ticket}`);
    assert.equal(inUrl.status, 401);

    const body = new URLSearchParams({ ticket }).toString();
    const got = await h.call('anonymous', 'POST', `/api/artifacts/${id}/download`, body, FORM);
    assert.equal(got.status, 200, got.body.toString());
    assert.deepEqual(got.body, data);
    assert.match(String(got.headers['content-disposition']), /^attachment/);

    const replay = await h.call('anonymous', 'POST', `/api/artifacts/${id}/download`, body, FORM);
    assert.equal(replay.status, 401);
    assert.equal(replay.json()['code'], 'GW_ERR_AUTH_TOKEN_INVALID');
    const none = await h.call('anonymous', 'POST', `/api/artifacts/${id}/download`, 'other=1', FORM);
    assert.equal(none.json()['code'], 'GW_ERR_AUTH_REQUIRED');
    const huge = await h.call(
      'anonymous',
      'POST',
      `/api/artifacts/${id}/download`,
      `ticket=${'a'.repeat(2000)}`,
      FORM,
    );
    assert.equal(huge.status, 413);

    const downloads = await h.core.audit.query({ action: 'artifacts.download' });
    const allowed = downloads.events.filter((e) => e.decision === 'allow');
    assert.equal(allowed.length, 1);
    assert.equal(allowed[0]?.actor, 'user:con', 'the download is audited as the ticket holder');
    assert.deepEqual(allowed[0]?.details, { range: null, via: 'ticket' });
    assert.ok(
      downloads.events.some((e) => e.decision === 'deny' && /already used/.test(e.reason ?? '')),
      'a replayed ticket is audited',
    );
  });
});
