import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backendRequestHeaders } from '../headers.ts';
import { parseRequest } from './fields.ts';

const GET = [':method', 'GET', ':scheme', 'https', ':authority', 'a.test', ':path', '/'];

void describe('HTTP/2 request fields', () => {
  void it('takes te: trailers in any case and refuses every other te', () => {
    for (const value of ['trailers', 'Trailers', 'TRAILERS']) {
      const head = parseRequest([...GET, 'te', value]);
      if (typeof head === 'string') assert.fail(`${value}: ${head}`);
      assert.equal(head.wantsTrailers, true, value);
    }
    for (const value of ['gzip', 'trailers, gzip', 'trailer', ''])
      assert.equal(parseRequest([...GET, 'te', value]), 'te other than trailers', value);
  });
});

void describe('backend request headers (node:http2 and HTTP/1.1 paths)', () => {
  void it('passes te: trailers on in any case, nothing else of te', () => {
    for (const te of ['trailers', 'Trailers'])
      assert.equal(backendRequestHeaders({ te }, '192.0.2.1', 'a.test')['te'], 'trailers', te);
    assert.equal(backendRequestHeaders({ te: 'gzip' }, '192.0.2.1', 'a.test')['te'], undefined);
  });
});
