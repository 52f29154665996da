import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { createRouteTable, patternToRegExp } from './route-table.ts';

void describe('route table', () => {
  void it('matches find-my-way patterns', () => {
    assert.ok(patternToRegExp('/api/users/:id').test('/api/users/42'));
    assert.ok(!patternToRegExp('/api/users/:id').test('/api/users/42/keys'));
    assert.ok(patternToRegExp('/files/*').test('/files/a/b/c'));
    assert.ok(patternToRegExp('/r/:n(^\\d+$)').test('/r/12'));
    assert.ok(!patternToRegExp('/r/:n(^\\d+$)').test('/r/ab'));
    assert.ok(patternToRegExp('/a::b').test('/a:b'));
    assert.ok(!patternToRegExp('/a.b').test('/axb'), 'dots are literal');
  });

  void it('lists the methods of every pattern matching a path', () => {
    const table = createRouteTable();
    table.add('GET', '/items/:id');
    table.add('put', '/items/:id');
    table.add('DELETE', '/items/special');
    assert.deepEqual(table.allowed('/items/special'), ['DELETE', 'GET', 'PUT']);
    assert.deepEqual(table.allowed('/items/1'), ['GET', 'PUT']);
    assert.deepEqual(table.allowed('/other'), []);
  });

  void it('treats any static path literally', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^\/[A-Za-z0-9._~!$&'()+,;=@%-]{0,30}$/), (path) => {
        assert.ok(patternToRegExp(path).test(path));
        assert.ok(!patternToRegExp(path).test(`${path}x/`));
      }),
    );
  });
});
