import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { readPrelude } from './prelude.ts';
import { encodeProxyV2 } from './proxy-protocol.ts';

const hello = readFileSync(join(import.meta.dirname, '../../../test/fixtures/edge/hello-curl.bin'));
const options = { proxyProtocol: false, deadlineMs: 200, maxHelloBytes: 65_536 };

void describe('prelude reader', () => {
  void it('returns the hello and every byte after a PROXY header for replay', async () => {
    const socket = new PassThrough();
    const header = encodeProxyV2({
      source: { address: '198.51.100.1', port: 5 },
      destination: { address: '192.0.2.1', port: 443 },
    });
    const pending = readPrelude(socket, { ...options, proxyProtocol: true });
    const all = Buffer.concat([header, hello, Buffer.from('early data')]);
    for (let at = 0; at < all.length; at += 7) socket.write(all.subarray(at, at + 7));
    const result = await pending;
    assert.equal(result.ok, true);
    if (!result.ok) return;
    assert.equal(result.proxy?.source?.address, '198.51.100.1');
    assert.equal(result.hello.serverName, 'curl.example.test');
    assert.ok(result.replay.subarray(0, hello.length).equals(hello));
    assert.equal(socket.listenerCount('data'), 0, 'the reader let go of the socket');
  });

  void it('times out a slow client at the deadline (mocked clock)', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const socket = new PassThrough();
    const pending = readPrelude(socket, options);
    socket.write(hello.subarray(0, 10));
    t.mock.timers.tick(199);
    let settled = false;
    void pending.then(() => {
      settled = true;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(settled, false, 'still waiting 1 ms before the deadline');
    t.mock.timers.tick(1);
    const result = await pending;
    assert.deepEqual(result.ok ? 'ok' : [result.stage, result.reason], ['hello', 'timeout']);
  });

  void it('times out a PROXY header that never completes, and fails garbage and early close at once', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const slow = new PassThrough();
    const pendingSlow = readPrelude(slow, { ...options, proxyProtocol: true });
    slow.write(Buffer.from('PROXY TCP4 1.2'));
    t.mock.timers.tick(200);
    const r1 = await pendingSlow;
    assert.deepEqual(r1.ok ? 'ok' : [r1.stage, r1.reason], ['proxy', 'timeout']);
    const garbage = new PassThrough();
    const pendingGarbage = readPrelude(garbage, { ...options, proxyProtocol: true });
    garbage.write(Buffer.from([0x16, 3, 1]));
    const r2 = await pendingGarbage;
    assert.deepEqual(r2.ok ? 'ok' : [r2.stage, r2.reason], ['proxy', 'not-proxy']);
    const closing = new PassThrough();
    const pendingClose = readPrelude(closing, options);
    closing.end(hello.subarray(0, 50));
    closing.resume();
    const r3 = await pendingClose;
    assert.deepEqual(r3.ok ? 'ok' : [r3.stage, r3.reason], ['hello', 'closed']);
    // Closed before any byte (a TCP health check), with or without a PROXY header expected.
    for (const proxyProtocol of [false, true]) {
      const probe = new PassThrough();
      const pendingProbe = readPrelude(probe, { ...options, proxyProtocol });
      probe.end();
      probe.resume();
      const r4 = await pendingProbe;
      assert.deepEqual(r4.ok ? 'ok' : r4.reason, 'empty');
    }
  });
});
