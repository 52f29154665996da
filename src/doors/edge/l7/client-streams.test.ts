import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientStreams, clientKey } from './client-streams.ts';

void describe('per-client limits of the L7 proxy', () => {
  void it('counts IPv4 addresses one by one and IPv6 addresses by /64', () => {
    assert.equal(clientKey('192.0.2.7'), 'ip:192.0.2.7');
    assert.equal(clientKey('::ffff:192.0.2.7'), 'ip:192.0.2.7');
    assert.equal(clientKey('2001:db8:1:2:aaaa::1'), 'ip6:2001:db8:1:2::/64');
    assert.equal(clientKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'), 'ip6:2001:db8:1:2::/64');
    assert.equal(clientKey('2001:db8::1'), 'ip6:2001:db8:0:0::/64');
    assert.equal(clientKey('::1'), 'ip6:0:0:0:0::/64');
    assert.notEqual(clientKey('2001:db8:1:3::1'), clientKey('2001:db8:1:2::1'));
  });

  void it('caps requests in flight per client and gives slots back', () => {
    const streams = new ClientStreams(2);
    assert.ok(streams.acquire('a'));
    assert.ok(streams.acquire('a'));
    assert.equal(streams.acquire('a'), false, 'a third request of the same client');
    assert.ok(streams.acquire('b'), 'another client is not affected');
    streams.release('a');
    assert.ok(streams.acquire('a'));
    assert.equal(streams.acquire('b', 1), false, 'a lower cap for this backend');
    streams.release('a');
    streams.release('a');
    streams.release('b');
    assert.equal(streams.clients, 0, 'clients with nothing in flight are forgotten');
  });

  void it('refuses a client that caused too many backend resets until its budget refills', () => {
    let now = 0;
    const streams = new ClientStreams(10_000, () => now);
    assert.ok(streams.acquire('a'));
    for (let i = 0; i < 1000; i++) streams.chargeReset('a');
    assert.equal(streams.acquire('a'), false, 'budget used up');
    assert.ok(streams.acquire('b'));
    now += 50;
    assert.ok(streams.acquire('a'), '50 ms later: 10 resets refilled');
    streams.release('a');
    streams.release('a');
    streams.release('b');
    assert.equal(streams.clients, 1, 'a client whose budget is refilling is kept');
    now += 10_000;
    streams.prune();
    assert.equal(streams.clients, 0);
  });
});
