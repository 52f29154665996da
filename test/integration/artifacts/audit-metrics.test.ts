import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { parseExposition, sampleValue } from '#core/metrics';
import { keyHint, signStream } from '../../../src/doors/artifacts/index.ts';
import { startDoor } from './harness.ts';

const JSON_BODY = { 'content-type': 'application/json' };

async function* once(data: Buffer): AsyncGenerator<Buffer> {
  yield data;
}

void it('lists page by page, and every action leaves its audit record and metric', async () => {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicKey = key.publicKey.export({ format: 'pem', type: 'spki' }).toString();
  await using h = await startDoor({ trust: { mode: 'require', keys: [{ id: 'release', publicKey }] } });
  const metric = async (name: string, labels: Record<string, string> = {}) =>
    sampleValue(parseExposition((await h.core.metrics.render()).body), name, labels) ?? 0;
  const audit = async (action: string) => (await h.core.audit.query({ action, limit: 100 })).events;
  const pairs = (events: readonly { actor: string; decision: string }[]) =>
    events.map((e) => `${e.actor} ${e.decision}`).sort((a, b) => a.localeCompare(b));

  const bodies = { alpha: randomBytes(3000), bravo: randomBytes(1000), charlie: randomBytes(2000) };
  const ids: Record<string, string> = {};
  for (const [name, data] of Object.entries(bodies)) {
    const up = await h.call(
      'publisher',
      'POST',
      `/api/artifacts?repository=team&name=${name}&version=1`,
      data,
    );
    assert.equal(up.status, 201);
    ids[name] = String(up.json()['id']);
  }
  const rejected = randomBytes(500);
  const mismatch = `/api/artifacts?repository=team&name=delta&version=1&sha256=${'0'.repeat(64)}`;
  assert.equal((await h.call('publisher', 'POST', mismatch, rejected)).status, 400);
  await h.door.scanQueue().drain();
  const alpha = ids['alpha'] ?? '';

  // Paging: pages of two by name, the total on every page, nothing past the end.
  const page = async (query: string) => {
    const answer = (await h.call('consumer', 'GET', `/api/artifacts?${query}`)).json();
    return { names: (answer['items'] as { name: string }[]).map((i) => i.name), total: answer['total'] };
  };
  assert.deepEqual(await page('sort=name&order=asc&limit=2&offset=0'), {
    names: ['alpha', 'bravo'],
    total: 3,
  });
  assert.deepEqual(await page('sort=name&order=asc&limit=2&offset=2'), { names: ['charlie'], total: 3 });
  assert.deepEqual(await page('sort=name&order=asc&limit=2&offset=3'), { names: [], total: 3 });
  assert.deepEqual(await page('sort=size&order=desc&limit=1&offset=1'), { names: ['charlie'], total: 3 });
  assert.deepEqual(await page('sort=size&limit=5000'), { names: ['alpha', 'charlie', 'bravo'], total: 3 });
  assert.deepEqual(await page('name=ra'), { names: ['bravo'], total: 1 });

  // Uploads, bytes, scans and verdicts.
  assert.equal(await metric('gatehouse_artifacts_uploads_total', { result: 'ok' }), 3);
  assert.equal(await metric('gatehouse_artifacts_uploads_total', { result: 'rejected' }), 1);
  assert.equal(await metric('gatehouse_artifacts_bytes_in_total'), 3000 + 1000 + 2000 + 500);
  assert.equal(
    await metric('gatehouse_artifacts_scan_duration_seconds_count', { scanner: 'gatehouse', result: 'ok' }),
    3,
  );
  assert.equal(await metric('gatehouse_artifacts_scan_queue_depth'), 0);
  assert.equal(await metric('gatehouse_artifacts_verdicts_total', { status: 'approved', by: 'policy' }), 3);
  assert.deepEqual(
    (await audit('artifacts.verdict')).map((e) => [e.actor, e.decision]),
    [
      ['system', 'allow'],
      ['system', 'allow'],
      ['system', 'allow'],
    ],
  );

  // Fail closed without a signature: the check and the refused download are both recorded.
  assert.equal((await h.call('consumer', 'GET', `/api/artifacts/${alpha}/download`)).status, 403);
  assert.equal(await metric('gatehouse_artifacts_signature_checks_total', { result: 'untrusted' }), 1);
  assert.equal(await metric('gatehouse_artifacts_downloads_total', { result: 'denied' }), 1);

  // Signatures: a good one is recorded, one over other bytes is refused and audited.
  const good = JSON.stringify(
    await signStream(once(bodies.alpha), key.privateKey, { hint: keyHint(key.publicKey) }),
  );
  assert.equal(
    (await h.call('publisher', 'POST', `/api/artifacts/${alpha}/signatures`, good, JSON_BODY)).status,
    201,
  );
  const wrong = JSON.stringify(
    await signStream(once(bodies.bravo), key.privateKey, { hint: keyHint(key.publicKey) }),
  );
  assert.equal(
    (await h.call('publisher', 'POST', `/api/artifacts/${alpha}/signatures`, wrong, JSON_BODY)).status,
    400,
  );
  const added = await audit('artifacts.signature.add');
  assert.deepEqual(pairs(added), ['user:pub allow', 'user:pub deny']);
  assert.match(added.find((e) => e.decision === 'deny')?.reason ?? '', /different digest/);

  const download = await h.call('consumer', 'GET', `/api/artifacts/${alpha}/download`);
  assert.equal(download.status, 200);
  assert.equal(await metric('gatehouse_artifacts_bytes_out_total'), 3000);
  assert.equal(await metric('gatehouse_artifacts_downloads_total', { result: 'ok' }), 1);
  assert.equal(await metric('gatehouse_artifacts_signature_checks_total', { result: 'trusted' }), 1);
  const checks = await audit('artifacts.signature.check');
  assert.deepEqual(pairs(checks), ['user:con allow', 'user:con deny']);
  assert.equal(checks.find((e) => e.decision === 'allow')?.details?.['signer'], 'key:release');
  assert.deepEqual(pairs(await audit('artifacts.download')), ['user:con allow', 'user:con deny']);

  // Override, key rotation and deletion.
  const charlie = ids['charlie'] ?? '';
  const override = JSON.stringify({ status: 'blocked', reason: 'licence review' });
  assert.equal(
    (await h.call('admin', 'POST', `/api/artifacts/${charlie}/verdict`, override, JSON_BODY)).status,
    200,
  );
  const [overridden] = await audit('artifacts.verdict.override');
  assert.equal(overridden?.actor, 'user:admin');
  assert.equal(overridden?.reason, 'licence review');
  assert.deepEqual(overridden?.details, { from: 'approved', to: 'blocked' });
  assert.equal(await metric('gatehouse_artifacts_verdicts_total', { status: 'blocked', by: 'override' }), 1);

  assert.equal((await h.call('admin', 'POST', '/api/artifacts/-/rotate-keys')).status, 200);
  const [rotated] = await audit('artifacts.keys.rotate');
  assert.equal(rotated?.decision, 'allow');
  assert.deepEqual(rotated?.details, { rewrapped: 0 });

  const bravo = ids['bravo'] ?? '';
  assert.equal((await h.call('admin', 'DELETE', `/api/artifacts/${bravo}`)).status, 204);
  const [deleted] = await audit('artifacts.delete');
  assert.equal(deleted?.actor, 'user:admin');
  assert.match(deleted?.resource ?? '', new RegExp(`^artifact:team/bravo@1#${bravo}$`));
  assert.equal(deleted?.details?.['shredded'], true);
  assert.deepEqual(await page('sort=name&order=asc'), { names: ['alpha', 'charlie'], total: 2 });
});
