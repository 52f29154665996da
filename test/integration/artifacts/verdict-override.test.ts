import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { startDoor } from './harness.ts';

const JSON_BODY = { 'content-type': 'application/json' };

void it('keeps an override through rescans until an admin hands the artifact back to the policy', async () => {
  await using h = await startDoor();
  const up = await h.call(
    'publisher',
    'POST',
    '/api/artifacts?repository=team&name=o&version=1',
    randomBytes(500),
  );
  assert.equal(up.status, 201);
  const id = String(up.json()['id']);
  await h.door.scanQueue().drain();
  const state = async () => {
    const a = (await h.call('admin', 'GET', `/api/artifacts/${id}`)).json();
    return `${String(a['status'])} by ${String(a['statusBy'])}`;
  };
  const verdict = (status: string, reason = 'licence review') =>
    h.call('admin', 'POST', `/api/artifacts/${id}/verdict`, JSON.stringify({ status, reason }), JSON_BODY);
  assert.equal(await state(), 'approved by policy');

  assert.equal((await verdict('blocked')).status, 200);
  assert.equal((await h.call('admin', 'POST', `/api/artifacts/${id}/scan`)).status, 202);
  await h.door.scanQueue().drain();
  assert.equal(await state(), 'blocked by override', 'a rescan does not change an override');

  const back = await verdict('policy', 'review done');
  assert.equal(back.status, 200);
  assert.equal(back.json()['statusBy'], 'policy');
  assert.equal(back.json()['status'], 'blocked', 'the verdict stays until the scan decides it');
  await h.door.scanQueue().drain();
  assert.equal(await state(), 'approved by policy');
  const events = (await h.core.audit.query({ action: 'artifacts.verdict.override', limit: 10 })).events;
  assert.deepEqual(events.map((e) => [e.reason, e.details]).toReversed(), [
    ['licence review', { from: 'approved', to: 'blocked' }],
    ['review done', { from: 'blocked', to: 'policy' }],
  ]);

  for (const bad of [
    { status: 'quarantined', reason: 'x' },
    { status: 'policy' },
    { status: 'policy', reason: ' ' },
  ]) {
    const refused = await h.call(
      'admin',
      'POST',
      `/api/artifacts/${id}/verdict`,
      JSON.stringify(bad),
      JSON_BODY,
    );
    assert.equal(refused.status, 400, JSON.stringify(bad));
    assert.equal(refused.json()['code'], 'GW_ERR_ARTIFACTS_OVERRIDE_INVALID');
  }
  assert.equal(
    (
      await h.call(
        'publisher',
        'POST',
        `/api/artifacts/${id}/verdict`,
        JSON.stringify({ status: 'policy', reason: 'x' }),
        JSON_BODY,
      )
    ).status,
    403,
  );
});
