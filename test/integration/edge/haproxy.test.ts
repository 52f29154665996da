import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startEchoBackend } from './backends.ts';
import { createTestPki, type Leaf, type TestPki } from './certs.ts';
import { freePort, HAPROXY_HEAD, type HaproxyProcess, startHaproxy } from './haproxy.ts';
import { type EdgeHarness, startEdge, testListener } from './harness.ts';
import { type Backend, curl } from './peers.ts';

interface Echo {
  readonly xff: string;
  readonly realIp: string;
  readonly ppAuthority?: string;
}

const parse = (r: { stdout: string; stderr: string }) => {
  assert.ok(r.stdout.startsWith('{'), r.stderr);
  return JSON.parse(r.stdout) as Echo;
};

void describe('edge with real peers: HAProxy in front and behind, and edge to edge', () => {
  let pki: TestPki;
  let leaf: Leaf;
  let origin: Backend;
  const closers: AsyncDisposable[] = [];

  before(async () => {
    pki = await createTestPki();
    leaf = await pki.issue('peers', ['*.peers.test']);
    origin = await startEchoBackend('http1');
  });

  after(async () => {
    for (const c of closers.toReversed()) await c[Symbol.asyncDispose]();
    await origin[Symbol.asyncDispose]();
    await pki[Symbol.asyncDispose]();
  });

  const l7Route = (listener: string, host: string) => ({
    id: `l7-${listener}`,
    listener,
    host,
    mode: 'l7',
    backend: origin.address,
    certFile: leaf.certFile,
    keyFile: leaf.keyFile,
  });

  void it('HAProxy in front sends PROXY v2: the real client address reaches the firewall and X-Forwarded-For', async () => {
    const edge: EdgeHarness = await startEdge({
      listeners: [
        testListener({
          id: 'behind-haproxy',
          proxyProtocol: true,
          trustedProxies: ['127.0.0.1'],
          firewall: { allow: [], deny: ['127.0.0.4'] },
        }),
      ],
      routes: [l7Route('behind-haproxy', 'front.peers.test')],
    });
    closers.push(edge);
    const front = await freePort();
    const haproxy: HaproxyProcess = await startHaproxy(
      () =>
        `${HAPROXY_HEAD}frontend f\n  mode tcp\n  bind 127.0.0.1:${front}\n  default_backend edge\n` +
        `backend edge\n  mode tcp\n  server e 127.0.0.1:${edge.port('behind-haproxy')} send-proxy-v2\n`,
      [front],
    );
    closers.push(haproxy);
    const seen = parse(await curl('front.peers.test', front, pki.caFile, ['--interface', '127.0.0.3']));
    assert.equal(seen.xff, '127.0.0.3');
    assert.equal(seen.realIp, '127.0.0.3');
    const blocked = await curl('front.peers.test', front, pki.caFile, ['--interface', '127.0.0.4']);
    assert.notEqual(blocked.code, 0);
    await edge.expectMetric(
      'gatehouse_edge_firewall_blocks_total',
      { listener: 'behind-haproxy', reason: 'denied' },
      1,
    );
    const events = await edge.events('edge.connection.blocked', (e) =>
      e.some((x) => x.clientIp === '127.0.0.4'),
    );
    assert.ok(events.some((x) => x.clientIp === '127.0.0.4' && x.reason === 'denied'));
  });

  void it('HAProxy behind the edge accepts its PROXY v2 header with the client address and AUTHORITY', async () => {
    const back = await freePort();
    const haproxy = await startHaproxy(
      async (dir) => {
        const bundle = join(dir, 'site.pem');
        await writeFile(bundle, Buffer.concat([leaf.cert, leaf.key]));
        return (
          `${HAPROXY_HEAD}frontend f\n  mode http\n  bind 127.0.0.1:${back} accept-proxy ssl crt ${bundle}\n` +
          '  option forwardfor\n  http-request set-header X-PP-Authority %[fc_pp_authority]\n' +
          `  default_backend origin\nbackend origin\n  mode http\n  server o ${origin.address}\n`
        );
      },
      [back],
    );
    closers.push(haproxy);
    const edge = await startEdge({
      listeners: [testListener({ id: 'front' })],
      routes: [
        {
          id: 'to-haproxy',
          listener: 'front',
          host: 'back.peers.test',
          backend: `127.0.0.1:${back}`,
          backendProxyProtocol: true,
        },
      ],
    });
    closers.push(edge);
    const seen = parse(
      await curl('back.peers.test', edge.port('front'), pki.caFile, ['--interface', '127.0.0.5']),
    );
    assert.equal(seen.xff, '127.0.0.5', 'HAProxy took the source from the edge PROXY header');
    assert.equal(seen.ppAuthority, 'back.peers.test', 'AUTHORITY TLV carries the SNI');
  });

  void it('L7 route with PROXY v2 to an HTTP/1.1 backend behind HAProxy: one header per client connection', async () => {
    const back = await freePort();
    const haproxy = await startHaproxy(
      () =>
        `${HAPROXY_HEAD}frontend f\n  mode http\n  bind 127.0.0.1:${back} accept-proxy\n` +
        '  option forwardfor\n  http-request set-header X-PP-Authority %[fc_pp_authority]\n' +
        `  default_backend origin\nbackend origin\n  mode http\n  server o ${origin.address}\n`,
      [back],
    );
    closers.push(haproxy);
    const edge = await startEdge({
      listeners: [testListener({ id: 'l7pp' })],
      routes: [
        { ...l7Route('l7pp', 'pp.peers.test'), backend: `127.0.0.1:${back}`, backendProxyProtocol: true },
      ],
    });
    closers.push(edge);
    for (const client of ['127.0.0.10', '127.0.0.11']) {
      const seen = parse(await curl('pp.peers.test', edge.port('l7pp'), pki.caFile, ['--interface', client]));
      // HAProxy appends the PROXY source to the X-Forwarded-For the edge set.
      assert.equal(seen.xff, `${client}, ${client}`);
      assert.equal(seen.ppAuthority, 'pp.peers.test');
    }
  });

  void it('two hops: edge L4 with PROXY v2 to an edge that terminates, firewalls and forwards the real client', async () => {
    const origin2 = await startEdge({
      listeners: [
        testListener({
          id: 'origin-side',
          proxyProtocol: true,
          trustedProxies: ['127.0.0.1/32'],
          firewall: { allow: ['127.0.0.0/29'], deny: ['127.0.0.7'] },
        }),
      ],
      routes: [l7Route('origin-side', 'app.peers.test')],
    });
    closers.push(origin2);
    const outer = await startEdge({
      listeners: [testListener({ id: 'outer' })],
      routes: [
        {
          id: 'hop',
          listener: 'outer',
          host: '*.peers.test',
          backend: `127.0.0.1:${origin2.port('origin-side')}`,
          backendProxyProtocol: true,
        },
      ],
    });
    closers.push(outer);
    const seen = parse(
      await curl('app.peers.test', outer.port('outer'), pki.caFile, ['--interface', '127.0.0.6']),
    );
    assert.equal(seen.xff, '127.0.0.6');
    assert.equal(seen.realIp, '127.0.0.6');
    const denied = await curl('app.peers.test', outer.port('outer'), pki.caFile, [
      '--interface',
      '127.0.0.7',
    ]);
    assert.notEqual(denied.code, 0);
    const outside = await curl('app.peers.test', outer.port('outer'), pki.caFile, [
      '--interface',
      '127.0.0.9',
    ]);
    assert.notEqual(outside.code, 0);
    await origin2.expectMetric(
      'gatehouse_edge_firewall_blocks_total',
      { listener: 'origin-side', reason: 'denied' },
      1,
    );
    await origin2.expectMetric(
      'gatehouse_edge_firewall_blocks_total',
      { listener: 'origin-side', reason: 'not-allowed' },
      1,
    );
  });
});
