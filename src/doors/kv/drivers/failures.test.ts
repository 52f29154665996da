import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { isGatewayError } from '#core/errors';
import type { KvDriver } from './driver.ts';
import { createNatsDriver } from './nats.ts';
import { createPostgresDriver } from './postgres.ts';
import { createRedisDriver } from './redis.ts';

const clock = { now: () => Date.now() };
const unavailable = (e: unknown) => isGatewayError(e) && e.code === 'GW_ERR_KV_BACKEND_UNAVAILABLE';

/**
 * A backend that accepts connections and never answers: the worst case for a client library,
 * which would otherwise wait forever. Every driver must give UNAVAILABLE within the deadline.
 */
void describe('drivers against dead backends', () => {
  let blackhole: Server;
  let closed: Server;
  let blackholeUrl: (scheme: string) => string;
  let closedPort: number;
  const sockets = new Set<Socket>();
  before(async () => {
    blackhole = createServer((s) => {
      sockets.add(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', r));
    const port = (blackhole.address() as { port: number }).port;
    blackholeUrl = (scheme) => `${scheme}://127.0.0.1:${port}`;
    // Bind then close to get a port nobody listens on.
    closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    closedPort = (closed.address() as { port: number }).port;
    await new Promise((r) => closed.close(r));
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => blackhole.close(r));
  });

  const drivers: Record<string, (url: (scheme: string) => string) => KvDriver> = {
    redis: (url) => createRedisDriver({ url: url('redis'), clock, timeoutMs: 300 }),
    postgres: (url) => createPostgresDriver({ url: `${url('postgres')}/test`, clock, timeoutMs: 300 }),
    nats: (url) => createNatsDriver({ url: url('nats'), clock, timeoutMs: 300 }),
  };
  for (const [name, make] of Object.entries(drivers)) {
    for (const target of ['silent', 'closed'] as const) {
      void it(`${name}: a ${target} backend gives UNAVAILABLE within the deadline, for reads and writes`, async () => {
        const driver = make(
          target === 'silent' ? blackholeUrl : (scheme) => `${scheme}://127.0.0.1:${closedPort}`,
        );
        try {
          for (const call of [
            (signal: AbortSignal) => driver.get('ns', 'k', { signal }),
            (signal: AbortSignal) => driver.set('ns', 'k', new Uint8Array([1]), { signal }),
            (signal: AbortSignal) => driver.list('ns', '', { signal, limit: 10 }),
          ]) {
            const started = performance.now();
            await assert.rejects(call(AbortSignal.timeout(500)), unavailable);
            assert.ok(performance.now() - started < 1500, `${name} answered within the deadline`);
          }
        } finally {
          await driver.close();
        }
      });
    }
  }
});
