import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AuditEvent } from '#core/audit';
import { connect as tlsConnect } from 'node:tls';
import { encodeProxyV2, parseProxyHeader } from '../../../src/doors/edge/proxy-protocol.ts';
import { createTestPki, type TestPki } from './certs.ts';
import { type EdgeHarness, startEdge, testListener } from './harness.ts';
import { type Backend, cli, curl, rawExchange, startHttpsBackend, startRawBackend } from './peers.ts';

const FIXTURES = join(import.meta.dirname, '../../fixtures/edge');
const chromiumHello = readFileSync(join(FIXTURES, 'hello-chromium.bin'));
const curlHello = readFileSync(join(FIXTURES, 'hello-curl.bin'));
// Deadline of the listeners below plus scheduling slack on a busy 2-core machine.
const PRELUDE_MS = 300;
const SLACK_MS = 700;

void describe('edge L4 passthrough', () => {
  let pki: TestPki;
  let edge: EdgeHarness;
  const backends: Backend[] = [];
  let recorder: Awaited<ReturnType<typeof startRawBackend>>;
  let silent: Awaited<ReturnType<typeof startRawBackend>>;
  let sender: Awaited<ReturnType<typeof startRawBackend>>;
  let counter: Awaited<ReturnType<typeof startRawBackend>>;
  // Backend sockets of `counter` still open.
  const counted = new Set<Socket>();
  // Sent by `sender` after the first bytes of a connection; big enough to fill every socket
  // buffer on the way, so that the edge's writes to a slow reader go asynchronous.
  const payload = randomBytes(32 * 1024 * 1024);
  const senderDone: Promise<Buffer>[] = [];

  before(async () => {
    pki = await createTestPki();
    const a = await startHttpsBackend(await pki.issue('app', ['app.example.test']), 'backend-exact');
    const b = await startHttpsBackend(await pki.issue('wild', ['*.example.test']), 'backend-wildcard');
    const c = await startHttpsBackend(
      await pki.issue('fallback', ['other.test', '127.0.0.1']),
      'backend-default',
    );
    backends.push(a, b, c);
    recorder = await startRawBackend();
    silent = await startRawBackend();
    counter = await startRawBackend((socket) => {
      counted.add(socket);
      socket.once('close', () => counted.delete(socket));
    });
    sender = await startRawBackend((socket, received) => {
      socket.once('data', () => socket.end(payload));
      // 'close' rather than 'end': a reset must fail the assertion below, not hang the test.
      senderDone.push(new Promise((resolve) => socket.once('close', () => resolve(received()))));
    });
    edge = await startEdge({
      listeners: [
        testListener({ id: 'main' }),
        testListener({ id: 'strict', firewall: { deny: ['127.0.0.2'], allow: [] } }),
        testListener({
          id: 'proxied',
          proxyProtocol: true,
          trustedProxies: ['127.0.0.1/32'],
          firewall: { deny: ['192.0.2.66'], allow: [] },
        }),
        testListener({ id: 'untrusting', proxyProtocol: true, trustedProxies: ['10.9.9.9'] }),
        testListener({ id: 'slow', idleTimeout: '300ms' }),
        // Writing 1961 one-byte segments can take longer than 300 ms on a loaded machine.
        testListener({ id: 'patient', preludeTimeout: '10s' }),
        testListener({ id: 'limited', connectionRate: { rate: 0.001, burst: 2 } }),
        testListener({ id: 'bulk', idleTimeout: '10s' }),
        testListener({ id: 'flood', firewall: { deny: ['127.0.0.3'], allow: [] } }),
        testListener({ id: 'resetters', idleTimeout: '20s' }),
        testListener({
          id: 'proxied-limited',
          proxyProtocol: true,
          trustedProxies: ['127.0.0.1/32'],
          connectionRate: { rate: 0.001, burst: 2 },
        }),
      ],
      routes: [
        { id: 'exact', listener: 'main', host: 'App.Example.Test', backend: a.address },
        { id: 'wild', listener: 'main', host: '*.example.test', backend: b.address },
        { id: 'fallback', listener: 'main', host: '*', backend: c.address },
        { id: 'record', listener: 'strict', host: 'record.test', backend: recorder.address },
        { id: 'pq', listener: 'patient', host: 'chromium.example.test', backend: recorder.address },
        {
          id: 'record-pp',
          listener: 'proxied',
          host: 'record.test',
          backend: recorder.address,
          backendProxyProtocol: true,
        },
        { id: 'untrusting', listener: 'untrusting', host: '*', backend: recorder.address },
        { id: 'silent', listener: 'slow', host: '*', backend: silent.address },
        { id: 'limited', listener: 'limited', host: '*', backend: c.address },
        { id: 'bulk', listener: 'bulk', host: '*', backend: sender.address },
        { id: 'flood', listener: 'flood', host: '*', backend: c.address },
        { id: 'resetters', listener: 'resetters', host: '*', backend: counter.address },
        { id: 'proxied-limited', listener: 'proxied-limited', host: '*', backend: recorder.address },
      ],
    });
  });

  after(async () => {
    await edge[Symbol.asyncDispose]();
    for (const b of backends) await b[Symbol.asyncDispose]();
    await recorder[Symbol.asyncDispose]();
    await silent[Symbol.asyncDispose]();
    await sender[Symbol.asyncDispose]();
    await counter[Symbol.asyncDispose]();
    await pki[Symbol.asyncDispose]();
  });

  void it('routes curl by exact name (any case), wildcard and default, end-to-end TLS to the backend', async () => {
    const port = edge.port();
    const exact = await curl('app.example.test', port, pki.caFile);
    assert.equal(exact.stdout, 'backend-exact', exact.stderr);
    const wild = await curl('api.example.test', port, pki.caFile);
    assert.equal(wild.stdout, 'backend-wildcard', wild.stderr);
    const deep = await curl('other.test', port, pki.caFile);
    assert.equal(deep.stdout, 'backend-default', deep.stderr);
    await edge.expectMetric('gatehouse_edge_connections_total', { route: 'exact', match: 'exact' }, 1);
    await edge.expectMetric('gatehouse_edge_connections_total', { route: 'wild', match: 'wildcard' }, 1);
    assert.ok((await edge.metric('gatehouse_edge_bytes_total', { route: 'exact', direction: 'out' })) > 0);
  });

  void it('passes openssl s_client through with the backend certificate', async () => {
    const result = await cli('sh', [
      '-c',
      `openssl s_client -connect 127.0.0.1:${edge.port()} -servername app.example.test -CAfile ${pki.caFile} -verify_return_error </dev/null`,
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /subject=CN ?= ?app\.example\.test/);
    assert.match(result.stdout, /Verify return code: 0 \(ok\)/);
  });

  void it('replays a post-quantum ClientHello sent in 1-byte segments byte for byte', async () => {
    const first = recorder.connections.length;
    const socket = connect({ host: '127.0.0.1', port: edge.port('patient'), noDelay: true });
    await new Promise((r) => socket.once('connect', r));
    let reset = false;
    socket.on('error', () => {
      reset = true;
    });
    // Waiting for each write keeps every byte in its own TCP segment.
    for (const byte of chromiumHello) await new Promise((r) => socket.write(Buffer.from([byte]), r));
    const got = () => Buffer.concat(recorder.connections[first] ?? []).length;
    for (let i = 0; i < 500 && got() < chromiumHello.length; i++) await new Promise((r) => setTimeout(r, 10));
    socket.destroy();
    assert.equal(reset, false);
    assert.deepEqual(Buffer.concat(recorder.connections[first] ?? []), chromiumHello);
    await edge.expectMetric('gatehouse_edge_connections_total', { route: 'pq', match: 'exact' }, 1);
  });

  void it('resets garbage, oversized and slowloris clients within the deadline and counts each', async () => {
    const port = edge.port('main');
    const garbage = await rawExchange(port, [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]);
    assert.ok(garbage.closedAfterMs < SLACK_MS, `garbage closed after ${garbage.closedAfterMs}`);
    assert.equal(garbage.received.length, 0, 'no TLS alert or HTTP answer');
    const over = await rawExchange(port, [Buffer.from([0x16, 3, 1, 0x00, 0x04, 1, 0x01, 0x00, 0x00])]);
    assert.ok(over.closedAfterMs < SLACK_MS);
    const slow = await rawExchange(port, [curlHello.subarray(0, 20)], { giveUpMs: 3000 });
    assert.ok(
      slow.closedAfterMs >= PRELUDE_MS - 50 && slow.closedAfterMs < PRELUDE_MS + SLACK_MS,
      `slowloris ${slow.closedAfterMs}`,
    );
    const truncated = await rawExchange(port, [curlHello.subarray(0, 100)], { giveUpMs: 3000 });
    assert.ok(truncated.closedAfterMs < PRELUDE_MS + SLACK_MS);
    await edge.expectMetric(
      'gatehouse_edge_client_hello_failures_total',
      { listener: 'main', reason: 'not-tls' },
      1,
    );
    await edge.expectMetric(
      'gatehouse_edge_client_hello_failures_total',
      { listener: 'main', reason: 'too-large' },
      1,
    );
    await edge.expectMetric(
      'gatehouse_edge_client_hello_failures_total',
      { listener: 'main', reason: 'timeout' },
      2,
    );
    const hello = (e: readonly AuditEvent[]) => e.filter((x) => x.reason === 'client-hello').length >= 4;
    assert.ok(hello(await edge.events('edge.connection.blocked', hello)));
    // Nothing else was affected.
    assert.equal((await curl('app.example.test', port, pki.caFile)).stdout, 'backend-exact');
  });

  void it('counts a TCP health check (connect, then close without a byte) without auditing a refusal', async () => {
    const port = edge.port('main');
    const empty = { listener: 'main' };
    const closed = { listener: 'main', reason: 'closed' };
    const start = {
      empty: await edge.metric('gatehouse_edge_empty_connections_total', empty),
      closed: await edge.metric('gatehouse_edge_client_hello_failures_total', closed),
      rejected: await edge.metric('gatehouse_edge_connections_rejected_total', {
        listener: 'main',
        reason: 'client-hello',
      }),
    };
    for (let i = 0; i < 3; i++) {
      const probe = connect({ host: '127.0.0.1', port });
      await once(probe, 'connect');
      probe.end();
      await once(probe, 'close');
    }
    // A client that sends part of a hello and leaves is still a refusal, audited.
    const partial = connect({ host: '127.0.0.1', port });
    partial.on('error', () => {}); // the edge resets it
    await once(partial, 'connect');
    partial.end(chromiumHello.subarray(0, 20));
    await new Promise((r) => partial.once('close', r));
    for (
      let i = 0;
      i < 100 && (await edge.metric('gatehouse_edge_empty_connections_total', empty)) < start.empty + 3;
      i++
    )
      await new Promise((r) => setTimeout(r, 10));
    await edge.expectMetric('gatehouse_edge_empty_connections_total', empty, start.empty + 3);
    const partialSeen = async () =>
      (await edge.metric('gatehouse_edge_client_hello_failures_total', closed)) === start.closed + 1;
    for (let i = 0; i < 100 && !(await partialSeen()); i++) await new Promise((r) => setTimeout(r, 10));
    await edge.expectMetric('gatehouse_edge_client_hello_failures_total', closed, start.closed + 1);
    await edge.expectMetric(
      'gatehouse_edge_connections_rejected_total',
      { listener: 'main', reason: 'client-hello' },
      start.rejected + 1,
    );
  });

  void it('resets a hello without SNI when the listener has no default route, and an unknown name', async () => {
    const port = edge.port('strict');
    const noSni = await new Promise<string>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false });
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      s.on('secureConnect', () => resolve('connected'));
    });
    assert.equal(noSni, 'ECONNRESET');
    const unknown = await curl('nobody.test', port, pki.caFile);
    assert.notEqual(unknown.code, 0);
    await edge.expectMetric(
      'gatehouse_edge_connections_rejected_total',
      { listener: 'strict', reason: 'no-route' },
      2,
    );
    const noRoute = (e: readonly AuditEvent[]) =>
      e.some((x) => x.reason === 'no-route' && x.resource === 'listener:strict');
    assert.ok(noRoute(await edge.events('edge.connection.blocked', noRoute)));
  });

  void it('firewall: a denied client address is reset before any TLS byte', async () => {
    const port = edge.port('strict');
    const denied = await rawExchange(port, [curlHello], { localAddress: '127.0.0.2' });
    assert.ok(denied.closedAfterMs < SLACK_MS);
    assert.equal(denied.received.length, 0);
    await edge.expectMetric(
      'gatehouse_edge_firewall_blocks_total',
      { listener: 'strict', reason: 'denied' },
      1,
    );
    const denial = (e: readonly AuditEvent[]) =>
      e.some((x) => x.reason === 'denied' && x.clientIp === '127.0.0.2');
    assert.ok(denial(await edge.events('edge.connection.blocked', denial)));
  });

  void it('a flood of refused connections is counted in full and audited with a bounded number of events', async () => {
    const port = edge.port('flood');
    const attempts = 60;
    const outcomes = await Promise.all(
      Array.from({ length: attempts }, () => rawExchange(port, [curlHello], { localAddress: '127.0.0.3' })),
    );
    assert.ok(outcomes.every((o) => o.received.length === 0 && o.closedAfterMs < SLACK_MS));
    await edge.expectMetric(
      'gatehouse_edge_firewall_blocks_total',
      { listener: 'flood', reason: 'denied' },
      attempts,
    );
    // One by one up to the budget, the rest as summaries with counts once their second ends.
    const mine = (e: readonly AuditEvent[]) => e.filter((x) => x.resource === 'listener:flood');
    const accounted = (e: readonly AuditEvent[]) =>
      mine(e).reduce((n, x) => n + (x.details?.['summary'] === true ? Number(x.details?.['count']) : 1), 0);
    let events: readonly AuditEvent[] = [];
    for (let i = 0; i < 5 && accounted(events) < attempts; i++) {
      events = await edge.events('edge.connection.blocked', (e) => accounted(e) >= attempts);
    }
    assert.equal(accounted(events), attempts);
    const single = mine(events).filter((x) => x.details?.['summary'] !== true);
    const summaries = mine(events).filter((x) => x.details?.['summary'] === true);
    assert.ok(summaries.length >= 1, 'the flood beyond the budget was summarised');
    assert.ok(single.length < attempts);
    assert.ok(single.every((x) => x.clientIp === '127.0.0.3' && x.reason === 'denied'));
    assert.deepEqual(summaries[0]?.details?.['sampleClients'], ['127.0.0.3']);
    assert.equal(summaries[0]?.details?.['code'], 'GW_ERR_EDGE_CONNECTION_BLOCKED');
  });

  void it('PROXY from a trusted peer: real address firewalled, v2 with AUTHORITY sent on', async () => {
    const port = edge.port('proxied');
    const hello = buildSniHello('record.test');
    const header = encodeProxyV2({
      source: { address: '198.51.100.7', port: 40000 },
      destination: { address: '203.0.113.1', port: 443 },
    });
    const first = recorder.connections.length;
    const ok = await rawExchange(port, [header, hello], { giveUpMs: 800 });
    assert.equal(ok.reset, false);
    const got = Buffer.concat(recorder.connections[first] ?? []);
    const parsed = parseProxyHeader(got);
    assert.equal(parsed.state, 'done');
    if (parsed.state === 'done') {
      assert.equal(parsed.header.source?.address, '198.51.100.7');
      assert.equal(parsed.header.authority, 'record.test');
      assert.deepEqual(got.subarray(parsed.header.length), hello);
    }
    const blocked = encodeProxyV2({
      source: { address: '192.0.2.66', port: 1 },
      destination: { address: '203.0.113.1', port: 443 },
    });
    const denied = await rawExchange(port, [blocked, hello]);
    assert.ok(denied.closedAfterMs < SLACK_MS);
    await edge.expectMetric(
      'gatehouse_edge_firewall_blocks_total',
      { listener: 'proxied', reason: 'denied' },
      1,
    );
    const slow = await rawExchange(port, [header.subarray(0, 10)]);
    assert.ok(slow.closedAfterMs < PRELUDE_MS + SLACK_MS);
    const bad = await rawExchange(port, [Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n')]);
    assert.ok(bad.closedAfterMs < SLACK_MS);
    await edge.expectMetric(
      'gatehouse_edge_proxy_header_failures_total',
      { listener: 'proxied', reason: 'timeout' },
      1,
    );
    await edge.expectMetric(
      'gatehouse_edge_proxy_header_failures_total',
      { listener: 'proxied', reason: 'bad-v1' },
      1,
    );
  });

  void it('refuses a PROXY header from an untrusted peer', async () => {
    const header = encodeProxyV2({
      source: { address: '198.51.100.7', port: 1 },
      destination: { address: '203.0.113.1', port: 443 },
    });
    const outcome = await rawExchange(edge.port('untrusting'), [header, curlHello]);
    assert.ok(outcome.closedAfterMs < SLACK_MS);
    await edge.expectMetric(
      'gatehouse_edge_proxy_header_failures_total',
      { listener: 'untrusting', reason: 'untrusted' },
      1,
    );
  });

  void it('relays a large download intact to a slow reader, then half-closes each way', async () => {
    const socket = connect({ host: '127.0.0.1', port: edge.port('bulk'), allowHalfOpen: true });
    const hello = buildSniHello('bulk.test');
    socket.write(hello);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      // A reader slower than the backend: the edge must hold back, never drop or reorder.
      socket.pause();
      setImmediate(() => socket.resume());
    });
    await once(socket, 'end');
    const received = Buffer.concat(chunks);
    assert.equal(received.length, payload.length);
    assert.ok(received.equals(payload), 'the download arrived byte for byte');
    // The backend's FIN reached the client; the client's direction is still open.
    socket.end('bye');
    const upstream = await senderDone.at(-1);
    assert.deepEqual(upstream, Buffer.concat([hello, Buffer.from('bye')]));
    socket.destroy();
  });

  void it('closes a connection to a backend that accepts and never answers after the idle timeout', async () => {
    const outcome = await rawExchange(edge.port('slow'), [curlHello], { giveUpMs: 3000 });
    assert.ok(outcome.closedAfterMs < 300 + SLACK_MS, `closed after ${outcome.closedAfterMs}`);
    assert.equal(silent.connections.length, 1);
  });

  void it('drops the backend connection of a client that resets while the edge dials, long before idleTimeout', async () => {
    // Each client sends its hello and resets at once: the reset lands while the edge reads the
    // hello or dials, before the relay began.
    for (let i = 0; i < 10; i++) {
      const socket = connect({ host: '127.0.0.1', port: edge.port('resetters') });
      socket.on('error', () => {});
      socket.once('connect', () => {
        socket.write(curlHello);
        socket.resetAndDestroy();
      });
    }
    // idleTimeout is 20 s: a backend connection open after a few seconds was left behind.
    const open = () => edge.service.listener('resetters')?.active ?? 0;
    for (let i = 0; i < 300 && open() > 0; i++) await new Promise((r) => setTimeout(r, 10));
    // Time for a dial in progress to complete and for the backend to see its connections close.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(counted.size, 0, `${counted.size} backend connections outlived their clients`);
    await edge.expectMetric('gatehouse_edge_route_connections_active', { route: 'resetters' }, 0);
    // The backend did nothing wrong.
    const failed = await edge.events('edge.backend.failed', () => false);
    assert.ok(!failed.some((e) => e.resource === 'route:resetters'));
  });

  void it('counts the connection rate of an IPv6 client per /64, as it holds the whole /64', async () => {
    const port = edge.port('proxied-limited');
    const outcomes = [];
    // Fresh addresses of one /64: one client, whose burst is 2.
    for (const address of ['2001:db8:1:1::1', '2001:db8:1:1::2', '2001:db8:1:1:ffff::3']) {
      outcomes.push(await rawExchange(port, [proxiedFrom(address), curlHello], { giveUpMs: 500 }));
    }
    assert.deepEqual(
      outcomes.map((o) => o.reset),
      [false, false, true],
    );
    await edge.expectMetric(
      'gatehouse_edge_firewall_blocks_total',
      { listener: 'proxied-limited', reason: 'rate-limited' },
      1,
    );
    // Another /64 is another client.
    const other = await rawExchange(port, [proxiedFrom('2001:db8:1:2::1'), curlHello], { giveUpMs: 500 });
    assert.equal(other.reset, false);
  });

  void it('per-client connection rate and run-time max connections', async () => {
    const port = edge.port('limited');
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await curl('any.test', port, pki.caFile, ['-k']));
    assert.equal(results.filter((r) => r.stdout === 'backend-default').length, 2);
    await edge.expectMetric(
      'gatehouse_edge_firewall_blocks_total',
      { listener: 'limited', reason: 'rate-limited' },
      1,
    );

    await edge.store.setMaxConnections('main', 1);
    await edge.service.refresh();
    const held = connect({ host: '127.0.0.1', port: edge.port('main') });
    await new Promise((r) => held.once('connect', r));
    const refused = await rawExchange(edge.port('main'), [curlHello]);
    assert.ok(refused.closedAfterMs < SLACK_MS);
    await edge.expectMetric(
      'gatehouse_edge_firewall_blocks_total',
      { listener: 'main', reason: 'max-connections' },
      1,
    );
    held.destroy();
    await edge.store.setMaxConnections('main', 100);
    await edge.service.refresh();
    assert.equal((await curl('app.example.test', edge.port('main'), pki.caFile)).stdout, 'backend-exact');
  });
});

/** A PROXY v2 header from a client at `address`. */
function proxiedFrom(address: string): Buffer {
  return encodeProxyV2({
    source: { address, port: 40000 },
    destination: { address: '2001:db8::443', port: 443 },
  });
}

/** A minimal TLS 1.3-shaped ClientHello asking for `name`. */
function buildSniHello(name: string): Buffer {
  const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
  const host = Buffer.from(name);
  const entry = Buffer.concat([Buffer.from([0]), u16(host.length), host]);
  const sni = Buffer.concat([u16(0), u16(entry.length + 2), u16(entry.length), entry]);
  const body = Buffer.concat([
    u16(0x0303),
    Buffer.alloc(32, 1),
    Buffer.from([0]),
    u16(2),
    u16(0x1301),
    Buffer.from([1, 0]),
    u16(sni.length),
    sni,
  ]);
  const hs = Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([0x16, 3, 1, hs.length >> 8, hs.length & 0xff]), hs]);
}
