import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startDoor } from './harness.ts';

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
});
