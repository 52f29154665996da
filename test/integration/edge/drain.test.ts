import assert from 'node:assert/strict';
import { connect as connectHttp2 } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { connect as connectTls } from 'node:tls';
import { startEchoBackend } from './backends.ts';
import { createTestPki, type TestPki } from './certs.ts';
import { type EdgeHarness, startEdge, testListener } from './harness.ts';
import type { Backend } from './peers.ts';

void describe('edge shutdown', () => {
  let pki: TestPki;
  let backend: Backend;
  let edge: EdgeHarness;

  before(async () => {
    pki = await createTestPki();
    const leaf = await pki.issue('drain', ['drain.test']);
    backend = await startEchoBackend('h2c');
    edge = await startEdge({
      listeners: [testListener({ idleTimeout: '1m' })],
      routes: [
        {
          id: 'd',
          listener: 'main',
          host: 'drain.test',
          mode: 'l7',
          backend: backend.address,
          backendProtocol: 'h2c',
          certFile: leaf.certFile,
          keyFile: leaf.keyFile,
        },
      ],
    });
  });

  after(async () => {
    // Stopping twice must be harmless (the test stopped it once already).
    await edge[Symbol.asyncDispose]();
    await backend[Symbol.asyncDispose]();
    await pki[Symbol.asyncDispose]();
  });

  void it('sends GOAWAY to idle HTTP/2 clients and stops well before the deadline', async () => {
    const port = edge.port();
    const client = connectHttp2(`https://drain.test:${port}`, {
      createConnection: () =>
        connectTls({ host: '127.0.0.1', port, servername: 'drain.test', ca: pki.ca, ALPNProtocols: ['h2'] }),
    });
    client.on('error', () => {});
    const status = await new Promise<number>((resolve, reject) => {
      const req = client.request({ ':path': '/' });
      req.on('response', (h) => resolve(Number(h[':status'])));
      req.on('error', reject);
      req.resume();
    });
    assert.equal(status, 200);
    let goaway = false;
    client.once('goaway', () => {
      goaway = true;
    });
    const started = performance.now();
    await edge.service.stop(AbortSignal.timeout(10_000));
    const took = performance.now() - started;
    assert.ok(took < 2000, `stopped after ${took} ms with an idle HTTP/2 client open`);
    for (let i = 0; i < 100 && !goaway; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(goaway, 'the client was told to go away');
    client.close();
  });
});
