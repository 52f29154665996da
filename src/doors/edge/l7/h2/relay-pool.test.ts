import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { backendKey, type EdgeRoute } from '../../model.ts';
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

  void it('drains the connections of a backend a route swap removed; a stream sent again gets one of its own', async () => {
    const pool = new RelayPool(() => new PassThrough());
    const kept = pool.connection(target);
    pool.retain(new Set([backendKey(route), 'h2c|127.0.0.1:2|']));
    assert.equal(kept.usable, true, 'a backend the new table names keeps its connection');
    assert.deepEqual(pool.connections(route), [kept]);

    pool.retain(new Set(['h2c|127.0.0.1:2|']));
    assert.equal(kept.usable, false, 'no new streams for a removed backend');
    assert.deepEqual(pool.connections(route), []);
    await Promise.resolve();
    assert.equal(kept.closed, true, 'an idle connection closes at once');

    // A request routed before the swap and sent again (REFUSED_STREAM, GOAWAY) reaches its
    // backend on a connection outside the pool, which closes once it carries nothing.
    const own = pool.connection(target);
    assert.notEqual(own, kept);
    assert.equal(own.usable, false);
    assert.deepEqual(pool.connections(route), []);
    await Promise.resolve();
    assert.equal(own.closed, true);
    pool.close();
  });
});
