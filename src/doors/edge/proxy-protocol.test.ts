import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { crc32c } from './crc32c.ts';
import { formatIp, normalizeIp, parseIp } from './ip.ts';
import {
  encodeProxyV2,
  encodeProxyV2Local,
  PP2_TYPE,
  type ProxyParse,
  parseProxyHeader,
  V2_SIGNATURE,
} from './proxy-protocol.ts';

const FIXTURES = join(import.meta.dirname, '../../../test/fixtures/edge');
const fixture = (name: string) => readFileSync(join(FIXTURES, name));

function header(result: ProxyParse) {
  assert.equal(result.state, 'done', JSON.stringify(result));
  if (result.state !== 'done') throw new Error('unreachable');
  return result.header;
}

function failure(result: ProxyParse) {
  assert.equal(result.state, 'failed', JSON.stringify(result));
  if (result.state !== 'failed') throw new Error('unreachable');
  return result.reason;
}

const ipv4 = fc.ipV4();
const ipv6 = fc.ipV6();
const port = fc.integer({ min: 0, max: 65535 });
const authority = fc
  .array(fc.stringMatching(/^[a-z0-9]{1,12}$/), { minLength: 1, maxLength: 4 })
  .map((labels) => labels.join('.'));

void describe('CRC32C', () => {
  void it('matches the RFC 3720 B.4 check values', () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
    assert.equal(crc32c(Buffer.alloc(32)), 0x8a9136aa);
    assert.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43);
  });
});

void describe('IP text', () => {
  void it('normalises mapped IPv6 and compresses per RFC 5952', () => {
    assert.equal(normalizeIp('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(normalizeIp('2001:DB8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
    assert.equal(normalizeIp('::1'), '::1');
    assert.equal(parseIp('1.2.3'), undefined);
    assert.equal(parseIp('fe80::1%eth0'), undefined);
  });

  void it('property: format(parse(x)) is a fixed point', () => {
    fc.assert(
      fc.property(fc.oneof(ipv4, ipv6), (text) => {
        const once = parseIp(text);
        assert.ok(once);
        const again = parseIp(formatIp(once.bytes));
        assert.deepEqual(again, once);
      }),
    );
  });
});

void describe('PROXY protocol', () => {
  void it('parses headers HAProxy wrote', () => {
    const v1 = header(parseProxyHeader(fixture('proxy-v1-tcp4.bin')));
    assert.equal(v1.version, 1);
    assert.equal(v1.family, 'tcp4');
    assert.equal(v1.source?.address, '127.0.0.1');
    const v16 = header(parseProxyHeader(fixture('proxy-v1-tcp6.bin')));
    assert.equal(v16.source?.address, '::1');
    const v2 = header(parseProxyHeader(fixture('proxy-v2-tcp4.bin')));
    assert.equal(v2.version, 2);
    assert.equal(v2.family, 'tcp4');
    assert.equal(v2.length, 28);
    const v26 = header(parseProxyHeader(fixture('proxy-v2-tcp6.bin')));
    assert.equal(v26.family, 'tcp6');
    assert.equal(v26.destination?.address, '::1');
    const crc = fixture('proxy-v2-crc32c.bin');
    const withCrc = header(parseProxyHeader(crc));
    assert.ok(withCrc.tlvs.some((t) => t.type === PP2_TYPE.CRC32C));
    assert.ok(withCrc.tlvs.some((t) => t.type === PP2_TYPE.UNIQUE_ID));
    const corrupted = Buffer.from(crc);
    corrupted[crc.length - 1] = (corrupted[crc.length - 1] ?? 0) ^ 1;
    assert.equal(failure(parseProxyHeader(corrupted)), 'bad-crc');
  });

  void it('property: the v2 writer round-trips through the parser at any split point', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.tuple(ipv4, ipv4), fc.tuple(ipv6, ipv6), fc.tuple(ipv4, ipv6)),
        port,
        port,
        fc.option(authority, { nil: undefined }),
        fc.boolean(),
        fc.nat(),
        ([src, dst], sp, dp, sni, crc, cut) => {
          const bytes = encodeProxyV2({
            source: { address: src, port: sp },
            destination: { address: dst, port: dp },
            ...(sni === undefined ? {} : { authority: sni }),
            crc32c: crc,
          });
          const prefix = bytes.subarray(0, cut % bytes.length);
          assert.equal(parseProxyHeader(prefix).state, 'partial');
          const h = header(parseProxyHeader(Buffer.concat([bytes, Buffer.from('tail')])));
          assert.equal(h.length, bytes.length);
          assert.equal(h.source?.address, normalizeIp(src));
          assert.equal(h.destination?.address, normalizeIp(dst));
          assert.equal(h.source?.port, sp);
          assert.equal(h.destination?.port, dp);
          assert.equal(h.authority, sni);
        },
      ),
      { numRuns: 500 },
    );
  });

  void it('property: v1 lines round-trip and every strict prefix is partial', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.tuple(ipv4, ipv4), fc.tuple(ipv6, ipv6)),
        port,
        port,
        fc.nat(),
        ([s, d], sp, dp, cut) => {
          const family = s.includes(':') ? 'TCP6' : 'TCP4';
          const line = Buffer.from(`PROXY ${family} ${s} ${d} ${sp} ${dp}\r\n`);
          assert.equal(parseProxyHeader(line.subarray(0, cut % line.length)).state, 'partial');
          const h = header(parseProxyHeader(line));
          assert.equal(h.source?.address, normalizeIp(s));
          assert.equal(h.destination?.port, dp);
        },
      ),
      { numRuns: 500 },
    );
  });

  void it('fuzz: random and mutated headers never throw', () => {
    const corpus = ['proxy-v1-tcp4.bin', 'proxy-v2-tcp6.bin', 'proxy-v2-crc32c.bin'].map(fixture);
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 600 }),
        fc.constantFrom(...corpus),
        fc.array(fc.tuple(fc.nat(60), fc.nat(255)), { maxLength: 6 }),
        (random, base, flips) => {
          assert.ok(['partial', 'failed', 'done'].includes(parseProxyHeader(random).state));
          assert.ok(
            ['partial', 'failed', 'done'].includes(
              parseProxyHeader(Buffer.concat([V2_SIGNATURE, random])).state,
            ),
          );
          const mutated = Buffer.from(base);
          for (const [at, value] of flips) mutated[at % mutated.length] = value;
          assert.ok(['partial', 'failed', 'done'].includes(parseProxyHeader(mutated).state));
        },
      ),
      { numRuns: 3000 },
    );
  });

  void it('reads LOCAL and UNSPEC without an address', () => {
    const local = header(parseProxyHeader(encodeProxyV2Local()));
    assert.equal(local.command, 'local');
    assert.equal(local.source, undefined);
    const unknown = header(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n')));
    assert.equal(unknown.family, 'unspec');
    const unspec = Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x00, 0, 0])]);
    assert.equal(header(parseProxyHeader(unspec)).family, 'unspec');
  });

  void it('rejects every malformed header, and garbage, without waiting', () => {
    const good = encodeProxyV2({
      source: { address: '192.0.2.1', port: 1 },
      destination: { address: '192.0.2.2', port: 2 },
    });
    const patch = (at: number, value: number) => {
      const copy = Buffer.from(good);
      copy[at] = value;
      return copy;
    };
    const cases: readonly [Buffer, string][] = [
      [Buffer.from([0x16, 3, 1]), 'not-proxy'],
      [Buffer.from('GET / HTTP/1.1\r\n'), 'not-proxy'],
      [Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n'), 'bad-v1'],
      [Buffer.from('PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n'), 'bad-v1'],
      [Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1\n'), 'bad-v1'],
      [Buffer.from(`PROXY TCP4 ${'1'.repeat(110)}`), 'bad-v1'],
      [Buffer.from('PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n'), 'bad-address'],
      [Buffer.from('PROXY TCP4 ::1 ::1 1 2\r\n'), 'bad-address'],
      [Buffer.from('PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n'), 'bad-address'],
      [Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n'), 'bad-address'],
      [Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n'), 'bad-address'],
      [patch(12, 0x11), 'bad-version'],
      [patch(12, 0x22), 'bad-command'],
      [patch(13, 0x41), 'bad-family'],
      [patch(15, 4), 'bad-address'],
      [Buffer.concat([patch(15, 14), Buffer.from([0x04, 0])]), 'bad-tlv'],
      [Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x11, 0x10, 0x00])]), 'too-large'],
    ];
    for (const [bytes, reason] of cases)
      assert.equal(failure(parseProxyHeader(bytes)), reason, bytes.toString('hex'));
  });
});
