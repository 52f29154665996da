/**
 * Listeners whose connection rate is kept in the real Redis (several replicas share it): the
 * check takes a round trip, during which a client may already be gone.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLimiterFactory } from '#core/ratelimit';
import { isolatedRedis, requireRedis } from '#testing/services';
import { createTestPki, type TestPki } from './certs.ts';
import { type EdgeHarness, startEdge, testListener } from './harness.ts';
import { startRawBackend } from './peers.ts';

const curlHello = readFileSync(join(import.meta.dirname, '../../fixtures/edge/hello-curl.bin'));
const redis = requireRedis();

void describe('edge connection rate on Redis', redis.options, () => {
  let pki: TestPki;
  let edge: EdgeHarness;
  let backend: Awaited<ReturnType<typeof startRawBackend>>;
  let keys: ReturnType<typeof isolatedRedis>;

  // Connection-rate checks wait here until a test lets them through.
  let gate: Promise<void> = Promise.resolve();
  let checking = 0;

  before(async () => {
    keys = isolatedRedis(redis.need(), 'edge-rate');
    pki = await createTestPki();
    const leaf = await pki.issue('any', ['l7.test']);
    backend = await startRawBackend();
    const rate = { connectionRate: { rate: 1000, burst: 1000 } };
    const limiters = createLimiterFactory({ redisUrl: keys.url, keyPrefix: keys.prefix });
    const tokenBucket = limiters.tokenBucket.bind(limiters);
    limiters.tokenBucket = (name, options) => {
      const limiter = tokenBucket(name, options);
      return {
        reset: (key) => limiter.reset(key),
        async take(key, cost) {
          checking++;
          await gate;
          return limiter.take(key, cost);
        },
      };
    };
    edge = await startEdge(
      {
        listeners: [testListener({ id: 'l4', ...rate }), testListener({ id: 'l7', ...rate })],
        routes: [
          { id: 'pass', listener: 'l4', host: '*', backend: backend.address },
          {
            id: 'term',
            listener: 'l7',
            host: '*',
            mode: 'l7',
            backend: backend.address,
            certFile: leaf.certFile,
            keyFile: leaf.keyFile,
          },
        ],
      },
      { limiters },
    );
  });

  after(async () => {
    await edge[Symbol.asyncDispose]();
    await backend[Symbol.asyncDispose]();
    await pki[Symbol.asyncDispose]();
    await keys.cleanup();
  });

  void it('counts no connection of a client reset while its rate was checked, on L4 and L7 routes', async () => {
    const { promise, resolve: release } = Promise.withResolvers<void>();
    gate = promise;
    const clients = ['l4', 'l7'].flatMap((listener) =>
      Array.from({ length: 5 }, () => {
        const socket = connect({ host: '127.0.0.1', port: edge.port(listener) });
        socket.on('error', () => {});
        socket.once('connect', () => socket.write(curlHello));
        return socket;
      }),
    );
    // Every hello was read and its check is waiting on Redis: the clients go away now.
    for (let i = 0; i < 300 && checking < clients.length; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(checking, clients.length);
    for (const socket of clients) socket.resetAndDestroy();
    const open = () =>
      (edge.service.listener('l4')?.active ?? 0) + (edge.service.listener('l7')?.active ?? 0);
    for (let i = 0; i < 300 && open() > 0; i++) await new Promise((r) => setTimeout(r, 10));
    release();
    // The checks' answers, and what the edge does with them.
    await new Promise((r) => setTimeout(r, 300));
    await edge.expectMetric('gatehouse_edge_route_connections_active', { route: 'pass' }, 0);
    await edge.expectMetric('gatehouse_edge_route_connections_active', { route: 'term' }, 0);
    assert.equal(backend.connections.length, 0, 'no backend connection for a client that was gone');
  });
});
