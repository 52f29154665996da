/**
 * An L7 route whose certificate cannot be loaded (a missing or broken file after a restart, or on
 * a replica the file has not reached yet) fails its own handshakes only: the other routes serve.
 */
import assert from 'node:assert/strict';
import { copyFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTestPki, type Leaf, type TestPki } from './certs.ts';
import { startEchoBackend } from './backends.ts';
import { type EdgeHarness, startEdge, testListener } from './harness.ts';
import { type Backend, curl } from './peers.ts';

const namesBroken = (e: readonly { resource: string }[]) => e.some((x) => x.resource === 'route:broken');

void describe('edge route certificates that cannot be loaded', () => {
  let pki: TestPki;
  let edge: EdgeHarness;
  let backend: Backend;
  let broken: Leaf;
  let brokenCert: string;

  before(async () => {
    pki = await createTestPki();
    const good = await pki.issue('good', ['good.test', '*.good.test']);
    broken = await pki.issue('broken', ['broken.test']);
    brokenCert = join(pki.dir, 'broken-route.pem');
    await writeFile(brokenCert, 'not a certificate\n');
    backend = await startEchoBackend('http1');
    const l7 = { mode: 'l7', listener: 'main', backend: backend.address };
    edge = await startEdge({
      listeners: [testListener({ id: 'main' })],
      routes: [
        { ...l7, id: 'good', host: 'good.test', certFile: good.certFile, keyFile: good.keyFile },
        { ...l7, id: 'broken', host: 'broken.test', certFile: brokenCert, keyFile: broken.keyFile },
        // Backend CA files that are gone (deleted, or not on this replica).
        ...(['https', 'h2'] as const).map((protocol) => ({
          ...l7,
          id: `no-ca-${protocol}`,
          host: `no-ca-${protocol}.good.test`,
          backendProtocol: protocol,
          backendCaFile: join(pki.dir, 'missing-ca.pem'),
          certFile: good.certFile,
          keyFile: good.keyFile,
        })),
      ],
    });
  });

  after(async () => {
    await edge[Symbol.asyncDispose]();
    await backend[Symbol.asyncDispose]();
    await pki[Symbol.asyncDispose]();
  });

  void it('answers 502 when a TLS backend route names a CA file that is gone, on every request path', async () => {
    for (const protocol of ['https', 'h2']) {
      const host = `no-ca-${protocol}.good.test`;
      for (const extra of [
        ['--http2'],
        ['--http1.1'],
        // A WebSocket upgrade dials its backend connection of its own.
        ['--http1.1', '-H', 'Connection: Upgrade', '-H', 'Upgrade: websocket'],
      ]) {
        const r = await curl(host, edge.port(), pki.caFile, [
          ...extra,
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
        ]);
        assert.equal(r.stdout, '502', `${host} ${extra.join(' ')}: ${r.stderr}`);
      }
    }
    // The edge still serves.
    assert.equal((await curl('good.test', edge.port(), pki.caFile)).code, 0);
  });

  void it('serves the other routes, names the broken one, and takes the file once it is fixed', async () => {
    assert.deepEqual(edge.service.table.routes.map((r) => r.id).toSorted(), [
      'broken',
      'good',
      'no-ca-h2',
      'no-ca-https',
    ]);
    const good = await curl('good.test', edge.port(), pki.caFile);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /"xff":"127.0.0.1"/);
    const failing = await curl('broken.test', edge.port(), pki.caFile);
    assert.notEqual(failing.code, 0, 'no handshake without a certificate');
    assert.ok(namesBroken(await edge.events('edge.route.certificate.failed', namesBroken)));
    // Fixed in place (a rename, as deployments write files): the next handshake loads it.
    await copyFile(broken.certFile, `${brokenCert}.tmp`);
    await rename(`${brokenCert}.tmp`, brokenCert);
    const fixed = await curl('broken.test', edge.port(), pki.caFile);
    assert.equal(fixed.code, 0, fixed.stderr);
  });
});
