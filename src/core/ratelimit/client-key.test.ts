import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { anonymousClientKey, ipv6Groups } from './client-key.ts';

void describe('anonymousClientKey', () => {
  void it('keys IPv4 by address and IPv6 by its /64', () => {
    assert.equal(anonymousClientKey('192.0.2.7'), 'ip:192.0.2.7');
    assert.equal(anonymousClientKey('2001:db8:1:2:aaaa::1'), 'ip6:2001:db8:1:2::/64');
    assert.equal(anonymousClientKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'), 'ip6:2001:db8:1:2::/64');
    assert.equal(anonymousClientKey('::1'), 'ip6:0:0:0:0::/64');
    assert.equal(anonymousClientKey('fe80::1%eth0'), 'ip6:fe80:0:0:0::/64');
    assert.notEqual(anonymousClientKey('2001:db8:1:3::1'), anonymousClientKey('2001:db8:1:2::1'));
    assert.equal(anonymousClientKey('unknown'), 'ip:unknown');
    // IPv4-mapped (a dual-stack socket's view of an IPv4 client): the IPv4 client itself.
    assert.equal(anonymousClientKey('::ffff:192.0.2.7'), 'ip:192.0.2.7');
    assert.equal(anonymousClientKey('::FFFF:c000:0207'), 'ip:192.0.2.7');
    assert.notEqual(anonymousClientKey('::ffff:192.0.2.7'), anonymousClientKey('::ffff:192.0.2.8'));
  });

  void it('expands every IPv6 spelling to the same eight groups', () => {
    fc.assert(
      fc.property(fc.ipV6(), (ip) => {
        const groups = ipv6Groups(ip);
        assert.ok(
          groups !== undefined && groups.length === 8 && groups.every((g) => g >= 0 && g <= 0xffff),
          ip,
        );
        const full = groups.map((g) => g.toString(16).padStart(4, '0')).join(':');
        assert.deepEqual(ipv6Groups(full), groups);
        assert.equal(anonymousClientKey(full), anonymousClientKey(ip));
      }),
      { numRuns: 500 },
    );
  });

  void it('never throws on arbitrary text', () => {
    fc.assert(fc.property(fc.string(), (text) => void anonymousClientKey(text)));
  });
});
