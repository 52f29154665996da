import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientConnections } from './server.ts';

void describe('kv listener connection cap', () => {
  void it('counts the connections of an IPv6 client per /64 and of an IPv4 one per address', () => {
    const open = new ClientConnections();
    const a = open.take('2001:db8:1:2::1', 2);
    const b = open.take('2001:db8:1:2:ffff::2', 2);
    assert.ok(a !== undefined && b !== undefined);
    // A third address of the same /64 is the same client, past its cap of 2.
    assert.equal(open.take('2001:db8:1:2::3', 2), undefined);
    assert.notEqual(open.take('2001:db8:1:3::1', 2), undefined);
    open.release(a);
    assert.notEqual(open.take('2001:db8:1:2::3', 2), undefined);
    // An IPv4 client seen IPv4-mapped on a dual-stack socket is that address, not a /64.
    assert.notEqual(open.take('::ffff:10.0.0.1', 1), undefined);
    assert.equal(open.take('10.0.0.1', 1), undefined);
    assert.notEqual(open.take('::ffff:10.0.0.2', 1), undefined);
  });
});
