import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { isolatedPostgres, requirePostgres } from '#testing/services';
import { type DoorHarness, startDoor } from './harness.ts';

const postgres = requirePostgres();

/** The `name` filter, the same on either store. */
async function checkNameFilter(h: DoorHarness): Promise<void> {
  for (const name of ['my_lib', 'mylib', 'MyXLib']) {
    const up = await h.call('admin', 'POST', `/api/artifacts?repository=team&name=${name}&version=1`, name);
    assert.equal(up.status, 201, up.body.toString());
  }
  const names = async (filter: string) =>
    (
      (await h.call('admin', 'GET', `/api/artifacts?sort=name&name=${encodeURIComponent(filter)}`)).json()[
        'items'
      ] as { name: string }[]
    )
      .map((i) => i.name)
      .toSorted((a, b) => a.localeCompare(b));
  // The wildcards were dropped: "my_lib" was searched as "mylib" and found only that one.
  assert.deepEqual(await names('my_lib'), ['my_lib']);
  assert.deepEqual(await names('_'), ['my_lib']);
  assert.deepEqual(await names('%'), []);
  // Case was ignored on SQLite (its LIKE) but not on PostgreSQL, where "LIB" found nothing.
  assert.deepEqual(await names('LIB'), ['my_lib', 'mylib', 'MyXLib']);
  assert.deepEqual(await names('MY_LIB'), ['my_lib']);
  assert.deepEqual(await names('xl'), ['MyXLib']);
}

void describe('artifact list query', () => {
  void it('refuses bad paging, sort, order and status parameters with 400 naming the parameter', async () => {
    await using h = await startDoor();
    assert.equal(
      (await h.call('admin', 'POST', '/api/artifacts?repository=team&name=one&version=1', 'x')).status,
      201,
    );
    // Each of these answered 500 GW_ERR_INTERNAL (the database refused the number) or was
    // silently dropped, widening the list: status=Approved listed every artifact, blocked ones too.
    for (const [query, field] of [
      ['limit=1.5', 'limit'],
      ['limit=-1', 'limit'],
      ['offset=1.5', 'offset'],
      ['offset=1e400', 'offset'],
      ['offset=abc', 'offset'],
      ['status=Approved', 'status'],
      ['sort=owner', 'sort'],
      ['order=up', 'order'],
      ['repository=team&repository=other', 'repository'],
    ] as const) {
      const res = await h.call('admin', 'GET', `/api/artifacts?${query}`);
      assert.equal(res.status, 400, `${query}: ${res.body.toString()}`);
      assert.equal(res.json()['code'], 'GW_ERR_REQUEST_INVALID', query);
      assert.equal(res.json()['field'], field, query);
    }
    const page = await h.call(
      'admin',
      'GET',
      '/api/artifacts?limit=1000&offset=0&sort=size&order=asc&repository=team',
    );
    assert.equal(page.status, 200);
    assert.equal(page.json()['total'], 1);
  });

  void it('finds names case-insensitively, with the LIKE wildcards _ and % taken literally', async () => {
    await using h = await startDoor();
    await checkNameFilter(h);
  });

  void it('takes a SHA-256 in either case, to find an artifact by it and to check an upload against it', async () => {
    await using h = await startDoor();
    const body = 'checksum search';
    const digest = createHash('sha256').update(body).digest('hex');
    // Tools print it in upper case (PowerShell's Get-FileHash): the upload was refused with 400.
    const up = await h.call(
      'admin',
      'POST',
      `/api/artifacts?repository=team&name=c&version=1&sha256=${digest.toUpperCase()}`,
      body,
    );
    assert.equal(up.status, 201, up.body.toString());
    // ... and the search found nothing, silently.
    for (const query of [digest, digest.toUpperCase()]) {
      const found = (await h.call('admin', 'GET', `/api/artifacts?sha256=${query}`)).json();
      assert.equal(found['total'], 1, query);
    }
    const wrong = await h.call(
      'admin',
      'POST',
      `/api/artifacts?repository=team&name=c&version=2&sha256=${'A'.repeat(64)}`,
      body,
    );
    assert.equal(wrong.json()['code'], 'GW_ERR_ARTIFACTS_DIGEST_MISMATCH');
    // Something that is no SHA-256 cannot match any artifact: said, not answered with nothing.
    for (const bad of ['abc', `${digest}00`, 'sha256:'.concat(digest)]) {
      const res = await h.call('admin', 'GET', `/api/artifacts?sha256=${encodeURIComponent(bad)}`);
      assert.equal(res.status, 400, bad);
      assert.equal(res.json()['field'], 'sha256');
    }
  });
});

void describe('artifact list query on PostgreSQL', postgres.options, () => {
  void it('finds names case-insensitively, with the LIKE wildcards _ and % taken literally', async () => {
    await using schema = await isolatedPostgres(postgres.need(), 'artifacts');
    await using h = await startDoor({}, undefined, { postgresUrl: schema.url });
    await checkNameFilter(h);
  });
});
