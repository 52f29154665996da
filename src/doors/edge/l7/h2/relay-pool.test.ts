import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import type { EdgeRoute } from '../../model.ts';
import type { ConnectionInfo } from '../../runtime.ts';
import { RelayPool } from './relay.ts';

const route = {
  id: 'r',
  listener: 'main',
  host: '*',
  mode: 'l7',
  backend: '127.0.0.1:1',
  backendProtocol: 'h2',
  backendProxyProtocol: false,
  backendCaFile: '/missing/ca.pem',
} as unknown as EdgeRoute;
const target = { route, info: {} as ConnectionInfo, connectTimeoutMs: 100 };

void describe('relay backend pool', () => {
  void it('dials again once a dial that threw (a missing CA file) works, however often it failed', () => {
    let fail = true;
    const pool = new RelayPool(() => {
      if (fail) throw new Error('ENOENT: backend CA file');
      return new PassThrough();
    });
    for (let i = 0; i < 40; i++) assert.throws(() => pool.connection(target), /ENOENT/);
    fail = false;
    const c = pool.connection(target);
    assert.equal(c.usable, true);
    assert.equal(pool.connections(route).length, 1);
    pool.close();
  });

  void it('gives a client a quarter of a full pool, from the stream limit the backend last announced', () => {
    const pool = new RelayPool(() => new PassThrough());
    assert.equal(pool.share(route), (256 * 16) / 4, 'before the backend ever answered');
    pool.close();
  });
});
