import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { ClientHelloReader, MAX_HELLO_BYTES, parseClientHello } from './client-hello.ts';

const FIXTURES = join(import.meta.dirname, '../../../test/fixtures/edge');

interface HelloSpec {
  readonly serverName?: string;
  readonly alpn?: readonly string[];
  readonly versions?: readonly number[];
  readonly groups?: readonly number[];
  readonly padding?: number;
}

const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const ext = (type: number, data: Buffer) => Buffer.concat([u16(type), u16(data.length), data]);

/** Builds a ClientHello handshake message (header included) the way RFC 8446 §4.1.2 lays it out. */
function buildHandshake(spec: HelloSpec): Buffer {
  const exts: Buffer[] = [];
  if (spec.serverName !== undefined) {
    const name = Buffer.from(spec.serverName, 'latin1');
    const entry = Buffer.concat([Buffer.from([0]), u16(name.length), name]);
    exts.push(ext(0, Buffer.concat([u16(entry.length), entry])));
  }
  if (spec.alpn !== undefined && spec.alpn.length > 0) {
    const list = Buffer.concat(
      spec.alpn.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p)])),
    );
    exts.push(ext(0x10, Buffer.concat([u16(list.length), list])));
  }
  if (spec.groups !== undefined) {
    exts.push(ext(0x0a, Buffer.concat([u16(spec.groups.length * 2), ...spec.groups.map(u16)])));
  }
  if (spec.versions !== undefined) {
    exts.push(ext(0x2b, Buffer.concat([Buffer.from([spec.versions.length * 2]), ...spec.versions.map(u16)])));
  }
  if (spec.padding !== undefined) exts.push(ext(0x15, Buffer.alloc(spec.padding)));
  const extensions = Buffer.concat(exts);
  const body = Buffer.concat([
    u16(0x0303),
    Buffer.alloc(32, 7),
    Buffer.from([0]),
    u16(4),
    Buffer.from([0x13, 0x01, 0x13, 0x02]),
    Buffer.from([1, 0]),
    u16(extensions.length),
    extensions,
  ]);
  const header = Buffer.from([1, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]);
  return Buffer.concat([header, body]);
}

/** Wraps handshake bytes into records cut at `cuts` (positions inside the handshake). */
function toRecords(handshake: Buffer, cuts: readonly number[] = []): Buffer {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < handshake.length))].toSorted((a, b) => a - b);
  const records: Buffer[] = [];
  let from = 0;
  for (const to of [...points, handshake.length]) {
    for (let at = from; at < to; at += 16_384) {
      const part = handshake.subarray(at, Math.min(to, at + 16_384));
      records.push(Buffer.from([0x16, 3, 1, part.length >> 8, part.length & 0xff]), part);
    }
    from = to;
  }
  return Buffer.concat(records);
}

function feed(bytes: Buffer, splits: readonly number[]) {
  const reader = new ClientHelloReader();
  const points = [...new Set(splits.filter((s) => s > 0 && s < bytes.length))].toSorted((a, b) => a - b);
  let from = 0;
  let state = reader.push(Buffer.alloc(0));
  for (const to of [...points, bytes.length]) {
    state = reader.push(bytes.subarray(from, to));
    if (state.state !== 'partial') return state;
    from = to;
  }
  return state;
}

const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?$/);
const hostName = fc.array(label, { minLength: 1, maxLength: 5 }).map((l) => l.join('.'));
const helloSpec = fc.record({
  serverName: hostName,
  alpn: fc.array(fc.constantFrom('h2', 'http/1.1', 'grpc-exp', 'acme-tls/1'), { maxLength: 3 }),
  versions: fc.array(fc.constantFrom(0x0304, 0x0303), { minLength: 1, maxLength: 2 }),
  groups: fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 1, maxLength: 8 }),
  padding: fc.integer({ min: 0, max: 3000 }),
});

void describe('ClientHello reader', () => {
  for (const [file, sni, pq] of [
    ['hello-curl.bin', 'curl.example.test', false],
    ['hello-openssl.bin', 'openssl.example.test', false],
    ['hello-chromium.bin', 'chromium.example.test', true],
    ['hello-node-mlkem.bin', 'node.example.test', true],
  ] as const) {
    void it(`reads the captured ${file} whole and one byte at a time`, () => {
      const bytes = readFileSync(join(FIXTURES, file));
      const whole = parseClientHello(bytes);
      assert.equal(whole.state, 'done');
      if (whole.state !== 'done') return;
      assert.equal(whole.hello.serverName, sni);
      assert.ok(whole.hello.versions.includes(0x0304));
      assert.equal(whole.hello.groups.includes(0x11ec), pq, 'X25519MLKEM768 offered');
      if (file !== 'hello-openssl.bin' || whole.hello.alpn.length > 0)
        assert.ok(whole.hello.alpn.includes('h2'));
      const bytewise = feed(
        bytes,
        Array.from({ length: bytes.length }, (_, i) => i),
      );
      assert.deepEqual(bytewise, whole);
    });
  }

  void it('reassembles a post-quantum hello fragmented over records and segments', () => {
    const bytes = readFileSync(join(FIXTURES, 'hello-chromium.bin'));
    const handshake = bytes.subarray(5);
    const fragmented = toRecords(handshake, [1, 3, 4, 100, 1200, 1201]);
    const state = feed(fragmented, [2, 5, 6, 700, 1500]);
    assert.equal(state.state, 'done');
    if (state.state === 'done') assert.equal(state.hello.serverName, 'chromium.example.test');
  });

  void it('property: any record fragmentation and any segmentation yields the same hello', () => {
    fc.assert(
      fc.property(
        helloSpec,
        fc.array(fc.nat(8000), { maxLength: 12 }),
        fc.array(fc.nat(8000), { maxLength: 30 }),
        (spec, recordCuts, segmentCuts) => {
          const bytes = toRecords(buildHandshake(spec), recordCuts);
          const state = feed(bytes, segmentCuts);
          assert.equal(state.state, 'done');
          if (state.state !== 'done') return;
          assert.equal(state.hello.serverName, spec.serverName);
          assert.deepEqual(state.hello.alpn, spec.alpn.length === 0 ? [] : spec.alpn);
          assert.deepEqual(state.hello.versions, spec.versions);
          assert.deepEqual(state.hello.groups, spec.groups);
          assert.equal(state.hello.recordBytes, bytes.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  void it('property: every strict prefix of a hello is partial, never done or failed', () => {
    fc.assert(
      fc.property(helloSpec, fc.array(fc.nat(5000), { maxLength: 5 }), fc.nat(), (spec, cuts, at) => {
        const bytes = toRecords(buildHandshake(spec), cuts);
        assert.equal(parseClientHello(bytes.subarray(0, at % bytes.length)).state, 'partial');
      }),
      { numRuns: 300 },
    );
  });

  void it('fuzz: random bytes and mutated hellos never throw and always end in a state', () => {
    const chromium = readFileSync(join(FIXTURES, 'hello-chromium.bin'));
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 4096 }),
        fc.array(fc.tuple(fc.nat(chromium.length - 1), fc.nat(255)), { maxLength: 8 }),
        (random, flips) => {
          const r = parseClientHello(random);
          assert.ok(['partial', 'failed', 'done'].includes(r.state));
          const mutated = Buffer.from(chromium);
          for (const [at, value] of flips) mutated[at] = value;
          const m = parseClientHello(mutated);
          assert.ok(['partial', 'failed', 'done'].includes(m.state));
        },
      ),
      { numRuns: 2000 },
    );
  });

  void it('rejects garbage, non-hello handshakes, bad records and bad names', () => {
    const cases: readonly [Buffer, string][] = [
      [Buffer.from('GET / HTTP/1.1\r\n\r\n'), 'not-tls'],
      [Buffer.from([0x16, 2, 0, 0, 1]), 'not-tls'],
      [Buffer.from([0x16, 3, 1, 0, 0]), 'bad-record'],
      [Buffer.from([0x16, 3, 1, 0x40, 0x01]), 'bad-record'],
      [toRecords(Buffer.from([2, 0, 0, 1, 0])), 'not-client-hello'],
      [toRecords(buildHandshake({ serverName: 'bad name' })), 'bad-server-name'],
      [toRecords(buildHandshake({ serverName: 'a\u0000b' })), 'bad-server-name'],
      [toRecords(Buffer.from([1, 0, 0, 3, 3, 3, 0])), 'malformed'],
    ];
    for (const [bytes, reason] of cases) {
      const state = parseClientHello(bytes);
      assert.equal(state.state, 'failed', bytes.toString('hex'));
      if (state.state === 'failed') assert.equal(state.reason, reason, bytes.toString('hex'));
    }
  });

  void it('fails a hello over the 64 KiB cap as soon as its length is known', () => {
    const header = Buffer.from([1, 0x01, 0x00, 0x00]);
    assert.equal(MAX_HELLO_BYTES, 65_536);
    const state = parseClientHello(toRecords(Buffer.concat([header, Buffer.alloc(10)])));
    assert.equal(state.state, 'failed');
    if (state.state === 'failed') assert.equal(state.reason, 'too-large');
    const padded = toRecords(buildHandshake({ serverName: 'a.test', padding: 60_000 }));
    const small = new ClientHelloReader(8192).push(padded);
    assert.equal(small.state, 'failed');
  });

  void it('reports a hello without SNI as done with no server name', () => {
    const state = parseClientHello(toRecords(buildHandshake({ alpn: ['h2'] })));
    assert.equal(state.state, 'done');
    if (state.state === 'done') assert.equal(state.hello.serverName, undefined);
  });
});
