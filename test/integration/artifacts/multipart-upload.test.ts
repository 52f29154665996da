import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ArtifactTables } from '../../../src/doors/artifacts/store/schema.ts';
import { startDoor } from './harness.ts';
import { BOUNDARY, END, FORM_HEADERS, field, file } from './multipart-form.ts';

void describe('multipart uploads', () => {
  void it('refuses a part after the file part, a repeated field and a body without its closing delimiter; nothing is stored', async () => {
    await using h = await startDoor();
    const cases: [string, string, RegExp][] = [
      // A sha256 after the file was ignored: the client believed its digest had been checked.
      [
        'sha256 after the file',
        field('name', 'a') + field('version', '1') + file('hello') + field('sha256', '0'.repeat(64)) + END,
        /part "sha256" after its file part/,
      ],
      [
        'a second file',
        field('name', 'b') + field('version', '1') + file('hello') + file('other') + END,
        /part "file" after its file part/,
      ],
      [
        'a repeated field',
        field('name', 'c') + field('name', 'd') + field('version', '1') + file('hello') + END,
        /field "name" more than once/,
      ],
      [
        'no closing delimiter',
        `${field('name', 'e') + field('version', '1')}${file('hello')}--${BOUNDARY}`,
        /ended early/,
      ],
    ];
    for (const [label, body, message] of cases) {
      const res = await h.call('publisher', 'POST', '/api/artifacts?repository=team', body, FORM_HEADERS);
      assert.equal(res.status, 400, `${label}: ${res.body.toString()}`);
      assert.equal(res.json()['code'], 'GW_ERR_ARTIFACTS_UPLOAD_INVALID', label);
      assert.match(String(res.json()['detail']), message, label);
    }
    assert.equal((await h.call('admin', 'GET', '/api/artifacts')).json()['total'], 0);
    const ok = await h.call(
      'publisher',
      'POST',
      '/api/artifacts?repository=team',
      field('name', 'a') +
        field('version', '1') +
        field('sha256', '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824') +
        file('hello') +
        END,
      FORM_HEADERS,
    );
    assert.equal(ok.status, 201, ok.body.toString());
  });

  void it('refuses a multipart/form-data body without a boundary instead of storing it raw, audited', async () => {
    await using h = await startDoor();
    for (const contentType of [
      'multipart/form-data',
      'multipart/form-data; charset=utf-8',
      'multipart/form-data; boundary=',
    ]) {
      const res = await h.call(
        'publisher',
        'POST',
        '/api/artifacts?repository=team&name=raw&version=1',
        field('name', 'raw') + file('hello') + END,
        { 'content-type': contentType },
      );
      assert.equal(res.status, 400, `${contentType}: ${res.body.toString()}`);
      assert.equal(res.json()['code'], 'GW_ERR_ARTIFACTS_UPLOAD_INVALID');
      assert.match(String(res.json()['detail']), /no boundary/);
    }
    assert.equal((await h.call('admin', 'GET', '/api/artifacts')).json()['total'], 0);
    const events = await h.core.audit.query({ action: 'artifacts.upload' });
    assert.deepEqual(
      events.events.map((e) => e.decision),
      ['deny', 'deny', 'deny'],
    );
  });

  void it("gives a file part without a Content-Type the media type application/octet-stream, not the form's", async () => {
    await using h = await startDoor();
    const up = await h.call(
      'admin',
      'POST',
      '/api/artifacts?repository=team',
      field('name', 'typed') + field('version', '1') + file('hello') + END,
      FORM_HEADERS,
    );
    assert.equal(up.status, 201, up.body.toString());
    assert.equal(up.json()['mediaType'], 'application/octet-stream');
    const down = await h.call('admin', 'GET', `/api/artifacts/${String(up.json()['id'])}/download`);
    assert.equal(down.headers['content-type'], 'application/octet-stream');
    const typed = await h.call(
      'admin',
      'POST',
      '/api/artifacts?repository=team',
      field('name', 'typed') + field('version', '2') + file('hello', 'application/gzip') + END,
      FORM_HEADERS,
    );
    assert.equal(typed.json()['mediaType'], 'application/gzip');
  });
  void it('refuses a media type that could not be sent back as a Content-Type header; a valid one is served as given', async () => {
    await using h = await startDoor();
    // A part's headers are UTF-8: a character past Latin-1 made every download of it a 500.
    const form = `${field('name', 'u') + field('version', '1') + file('hello', 'text/plain; charset=報')}${END}`;
    const refused = await h.call('admin', 'POST', '/api/artifacts?repository=team', form, FORM_HEADERS);
    assert.equal(refused.status, 400, refused.body.toString());
    assert.equal(refused.json()['field'], 'mediaType');
    for (const type of [`x/${'y'.repeat(300)}`, 'text/plain; x=\u00e4']) {
      const raw = await h.call('admin', 'POST', '/api/artifacts?repository=team&name=r&version=1', 'hello', {
        'content-type': type,
      });
      assert.equal(raw.status, 400, `${type}: ${raw.body.toString()}`);
      assert.equal(raw.json()['field'], 'mediaType');
    }
    const type = 'application/vnd.example+json; charset="utf-8"';
    const ok = await h.call('admin', 'POST', '/api/artifacts?repository=team&name=r&version=1', '{}', {
      'content-type': type,
    });
    assert.equal(ok.status, 201, ok.body.toString());
    const down = await h.call('admin', 'GET', `/api/artifacts/${String(ok.json()['id'])}/download`);
    assert.equal(down.status, 200);
    assert.equal(down.headers['content-type'], type);
    // One stored before the upload checked it is served as bytes rather than failing.
    await h.core.db
      .kysely<ArtifactTables>()
      .updateTable('artifacts_items')
      .set({ media_type: 'text/plain; charset=報' })
      .where('id', '=', String(ok.json()['id']))
      .execute();
    const old = await h.call('admin', 'GET', `/api/artifacts/${String(ok.json()['id'])}/download`);
    assert.equal(old.status, 200, old.body.toString());
    assert.equal(old.headers['content-type'], 'application/octet-stream');
  });
});
