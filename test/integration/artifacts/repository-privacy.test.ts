/**
 * A caller bound to one repository learns nothing about another repository's artifacts: not
 * whether an id exists there (every item route answers as for an absent id), not whether bytes
 * it uploads exist there (`deduplicated`). A form upload may name its repository in a field.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { keyHint, signStream } from '../../../src/doors/artifacts/index.ts';
import { startDoor } from './harness.ts';
import { FORM_HEADERS, form } from './multipart-form.ts';

// Strips what differs by design between two answers (the error id, the request id).
const shape = (r: { status: number; body: Buffer }, id: string) => {
  const text = r.body.toString('utf8').replaceAll(id, '<id>');
  const doc = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
  const { errorId: _e, requestId: _r, instance: _i, ...rest } = doc;
  return { status: r.status, ...rest };
};

void describe('repository privacy', () => {
  void it('answers an artifact of another repository exactly as an id that names nothing, on every item route', async () => {
    await using h = await startDoor();
    const up = await h.call(
      'admin',
      'POST',
      '/api/artifacts?repository=team&name=secret&version=1',
      randomBytes(64),
    );
    assert.equal(up.status, 201);
    const real = String(up.json()['id']);
    const absent = '00000000-0000-4000-8000-000000000000';
    const routes: [string, (id: string) => string][] = [
      ['GET', (id) => `/api/artifacts/${id}`],
      ['DELETE', (id) => `/api/artifacts/${id}`],
      ['GET', (id) => `/api/artifacts/${id}/download`],
      ['POST', (id) => `/api/artifacts/${id}/download-tickets`],
      ['GET', (id) => `/api/artifacts/${id}/scan-results`],
    ];
    for (const [method, path] of routes) {
      const seen = await h.call('outsider', method, path(real));
      const none = await h.call('outsider', method, path(absent));
      assert.deepEqual(shape(seen, real), shape(none, absent), `${method} ${path('<id>')}`);
      assert.doesNotMatch(seen.body.toString(), /team/, `${method} ${path('<id>')} names the repository`);
    }
    // A caller who may read there still gets the real answer.
    assert.equal((await h.call('consumer', 'GET', `/api/artifacts/${real}`)).status, 200);
    const refused = await h.call('consumer', 'DELETE', `/api/artifacts/${real}`);
    assert.equal(refused.status, 403);
    assert.match(refused.body.toString(), /team/);
  });

  void it('reports an upload deduplicated only against artifacts the uploader may see', async () => {
    await using h = await startDoor();
    const bytes = randomBytes(256);
    const first = await h.call('publisher', 'POST', '/api/artifacts?repository=team&name=a&version=1', bytes);
    assert.equal(first.json()['deduplicated'], false);
    // The same bytes from a caller bound to another repository: stored once, but not said.
    const other = await h.call('outsider', 'POST', '/api/artifacts?repository=other&name=b&version=1', bytes);
    assert.equal(other.status, 201);
    assert.equal(other.json()['deduplicated'], false);
    // Within the caller's own repository, and for a caller who sees everything, it is said.
    const again = await h.call('outsider', 'POST', '/api/artifacts?repository=other&name=b&version=2', bytes);
    assert.equal(again.json()['deduplicated'], true);
    const admin = await h.call('admin', 'POST', '/api/artifacts?repository=third&name=c&version=1', bytes);
    assert.equal(admin.json()['deduplicated'], true);
  });

  void it('takes a form upload to the repository its field names, for a caller bound to that repository only', async () => {
    await using h = await startDoor();
    const ok = await h.call(
      'publisher',
      'POST',
      '/api/artifacts',
      form({ repository: 'team', name: 'f', version: '1' }, 'x'),
      FORM_HEADERS,
    );
    assert.equal(ok.status, 201, ok.body.toString());
    assert.equal(ok.json()['repository'], 'team');
    // A repository the caller may not upload to, named in the field or in nothing (default).
    for (const fields of [
      { repository: 'other', name: 'g', version: '1' },
      { name: 'h', version: '1' },
    ]) {
      const refused = await h.call('publisher', 'POST', '/api/artifacts', form(fields, 'x'), FORM_HEADERS);
      assert.equal(refused.status, 403, JSON.stringify(fields));
      assert.equal(refused.json()['code'], 'GW_ERR_RBAC_DENIED');
    }
    // Unauthenticated: refused before the body is read.
    assert.equal(
      (
        await h.call(
          'anonymous',
          'POST',
          '/api/artifacts',
          form({ repository: 'team', name: 'i', version: '1' }, 'x'),
          FORM_HEADERS,
        )
      ).status,
      401,
    );
    const listed = await h.call('admin', 'GET', '/api/artifacts');
    assert.equal(listed.json()['total'], 1);
  });
  void it('keeps a signature to the repository it was added in, though the bytes are stored once', async () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const publicKey = key.publicKey.export({ format: 'pem', type: 'spki' }).toString();
    await using h = await startDoor({ trust: { mode: 'require', keys: [{ id: 'release', publicKey }] } });
    const bytes = randomBytes(512);
    const team = await h.call('publisher', 'POST', '/api/artifacts?repository=team&name=a&version=1', bytes);
    const other = await h.call('outsider', 'POST', '/api/artifacts?repository=other&name=b&version=1', bytes);
    const [teamId, otherId] = [String(team.json()['id']), String(other.json()['id'])];
    await h.door.scanQueue().drain();
    const signed = JSON.stringify(
      await signStream(Readable.from([bytes]), key.privateKey, { hint: keyHint(key.publicKey) }),
    );
    const json = { 'content-type': 'application/json' };
    // A publisher of another repository signs its own copy: nothing of it reaches "team".
    const added = await h.call('outsider', 'POST', `/api/artifacts/${otherId}/signatures`, signed, json);
    assert.equal(added.status, 201, added.body.toString());
    const signatures = async (user: string, id: string) =>
      (await h.call(user, 'GET', `/api/artifacts/${id}/signatures`)).json()['signatures'] as unknown[];
    assert.deepEqual(await signatures('consumer', teamId), []);
    assert.equal(
      (await h.call('consumer', 'GET', `/api/artifacts/${teamId}/verification`)).json()['trusted'],
      false,
    );
    assert.equal((await h.call('consumer', 'GET', `/api/artifacts/${teamId}/download`)).status, 403);
    // And what "team" signs is not shown on the other repository's copy (it would say the bytes are there).
    const own = await h.call('publisher', 'POST', `/api/artifacts/${teamId}/signatures`, signed, json);
    assert.equal(own.status, 201);
    assert.equal((await signatures('consumer', teamId)).length, 1);
    assert.equal((await signatures('outsider', otherId)).length, 1);
    assert.equal((await h.call('consumer', 'GET', `/api/artifacts/${teamId}/download`)).status, 200);
    // Deleting the last copy in a repository drops that repository's signatures: a new upload
    // of the same bytes there starts unsigned, while the other repository keeps its own.
    assert.equal((await h.call('admin', 'DELETE', `/api/artifacts/${otherId}`)).status, 204);
    const again = await h.call('outsider', 'POST', '/api/artifacts?repository=other&name=b&version=2', bytes);
    const againId = String(again.json()['id']);
    assert.deepEqual(await signatures('outsider', againId), []);
    await h.door.scanQueue().drain();
    assert.equal(
      (await h.call('outsider', 'GET', `/api/artifacts/${againId}/verification`)).json()['trusted'],
      false,
    );
    assert.equal((await signatures('consumer', teamId)).length, 1);
  });
});
