import assert from 'node:assert/strict';
import { BlockList } from 'node:net';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { createCidrMatcher, ipToBigInt } from './cidr.ts';

const v4 = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

// Full, uncompressed IPv6 text from 8 groups; the compressed form comes from the URL parser.
const v6full = (groups: readonly number[]) => groups.map((g) => g.toString(16)).join(':');
const v6compressed = (groups: readonly number[]) =>
  new URL(`http://[${v6full(groups)}]/`).hostname.slice(1, -1);
const group = fc.integer({ min: 0, max: 0xffff });
const groups8 = fc.array(fc.oneof(group, fc.constant(0)), { minLength: 8, maxLength: 8 });

function bits6(groups: readonly number[]): bigint {
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}

void describe('createCidrMatcher', () => {
  void it('matches IPv4 blocks like integer prefix arithmetic (property)', () => {
    fc.assert(
      fc.property(
        fc.nat(2 ** 32 - 1),
        fc.nat(2 ** 32 - 1),
        fc.integer({ min: 0, max: 32 }),
        (net, ip, prefix) => {
          const shift = 32 - prefix;
          const expected = prefix === 0 || Math.floor(net / 2 ** shift) === Math.floor(ip / 2 ** shift);
          const m = createCidrMatcher([`${v4(net)}/${prefix}`]);
          assert.equal(m.matches(v4(ip)), expected);
          assert.equal(m.matches(`::ffff:${v4(ip)}`), expected, 'IPv4-mapped form');
        },
      ),
    );
  });

  void it('matches IPv6 blocks like 128-bit prefix arithmetic, in any textual form (property)', () => {
    fc.assert(
      fc.property(groups8, groups8, fc.integer({ min: 0, max: 128 }), (net, ip, prefix) => {
        const shift = BigInt(128 - prefix);
        const expected = bits6(net) >> shift === bits6(ip) >> shift;
        const m = createCidrMatcher([`${v6compressed(net)}/${prefix}`]);
        assert.equal(m.matches(v6full(ip)), expected);
        assert.equal(m.matches(v6compressed(ip)), expected);
        assert.equal(m.matches(`${v6compressed(ip)}%eth0`), expected, 'zone id ignored');
      }),
    );
  });

  void it('agrees with node:net BlockList on IPv4 (property)', () => {
    fc.assert(
      fc.property(
        fc.nat(2 ** 32 - 1),
        fc.nat(2 ** 32 - 1),
        fc.integer({ min: 1, max: 32 }),
        (net, ip, prefix) => {
          const list = new BlockList();
          list.addSubnet(v4(net), prefix, 'ipv4');
          assert.equal(
            createCidrMatcher([`${v4(net)}/${prefix}`]).matches(v4(ip)),
            list.check(v4(ip), 'ipv4'),
          );
        },
      ),
    );
  });

  void it('parses every IPv6 text form to the same value (property)', () => {
    fc.assert(fc.property(groups8, (g) => ipToBigInt(v6full(g)) === ipToBigInt(v6compressed(g))));
  });

  void it('handles mapped and embedded forms explicitly', () => {
    const m = createCidrMatcher(['10.0.0.0/8', '2001:db8::/32', '192.0.2.7']);
    assert.equal(m.matches('10.1.2.3'), true);
    assert.equal(m.matches('::ffff:10.1.2.3'), true);
    assert.equal(m.matches('::ffff:a01:203'), true);
    assert.equal(m.matches('11.0.0.1'), false);
    assert.equal(m.matches('2001:db8:ffff::1'), true);
    assert.equal(m.matches('2001:db9::1'), false);
    assert.equal(m.matches('192.0.2.7'), true);
    assert.equal(m.matches('192.0.2.8'), false);
    // ::a01:203 is IPv4-compatible (deprecated), not mapped: it must not match 10/8.
    assert.equal(m.matches('::10.1.2.3'), false);
    assert.equal(createCidrMatcher(['::ffff:0:0/96']).matches('203.0.113.9'), true);
    assert.equal(createCidrMatcher(['0.0.0.0/0']).matches('2001:db8::1'), false);
    assert.equal(createCidrMatcher(['::/0']).matches('203.0.113.9'), true);
  });

  void it('refuses malformed addresses and blocks', () => {
    const m = createCidrMatcher(['0.0.0.0/0']);
    for (const bad of ['', 'localhost', '1.2.3', '1.2.3.4.5', '01.2.3.4', '::g', '1.2.3.4/8']) {
      assert.equal(m.matches(bad), false, bad);
    }
    for (const bad of ['10.0.0.0/33', '::/129', '10.0.0.0/-1', '10.0.0.0/x', 'host/8', '10.0.0.0/']) {
      assert.throws(() => createCidrMatcher([bad]), TypeError, bad);
    }
    assert.equal(createCidrMatcher([]).matches('127.0.0.1'), false);
  });
});
