import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createAuditLog } from '#core/audit';
import type { Authenticator } from '#core/auth';
import { validateRaw } from '#core/config';
import { GatewayError } from '#core/errors';
import { createHttpServer, httpConfigSchema, registerAuditRoutes } from '#core/http';
import { silentLogger } from '#core/log';
import { createMetrics } from '#core/metrics';
import { createLimiterFactory } from '#core/ratelimit';
import { authorize } from '#core/rbac';
import { createSqliteDatabase } from '#core/storage';
import { listenerApp, pingCheck } from './adapters.ts';
import type { CoreServices } from './app.ts';
import { createHealthRegistry } from './health.ts';
import { runApps } from './runner.ts';
import { installSignalHandlers } from './signals.ts';

const authenticator: Authenticator = {
  authenticate: (credentials) =>
    credentials.bearer === 'auditor'
      ? Promise.resolve({
          id: 'user:audrey',
          kind: 'user',
          name: 'audrey',
          bindings: [{ role: 'auditor', namespace: '*' }],
        })
      : Promise.reject(new GatewayError('GW_ERR_AUTH_TOKEN_INVALID')),
};

void describe('core lifecycle', () => {
  void it('serves, reports readiness, audits, and drains an in-flight request on SIGTERM before exit 0', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gatehouse-lifecycle-'));
    const log = silentLogger();
    const clock = { now: () => Date.now() };
    const metrics = createMetrics();
    const db = await createSqliteDatabase({ file: join(dir, 'gatehouse.db') });
    const health = createHealthRegistry({ clock });
    health.register(
      'database',
      pingCheck((ms) => db.ping(ms)),
    );
    const audit = await createAuditLog({ db, file: join(dir, 'audit.jsonl'), clock, log, metrics });
    const config = validateRaw(httpConfigSchema, { listen: '127.0.0.1:0' }, 'test');
    const limiters = createLimiterFactory();
    const http = await createHttpServer({
      config,
      log,
      metrics,
      authenticator,
      authorize,
      limiters,
      clock,
      health,
      audit,
    });
    registerAuditRoutes(http, audit);
    let release!: () => void;
    let entered!: () => void;
    const inHandler = new Promise<void>((resolve) => {
      entered = resolve;
    });
    http.app.get('/slow', async () => {
      await new Promise<void>((resolve) => {
        release = resolve;
        entered();
      });
      return { done: true };
    });
    const runner = await runApps([listenerApp('http', http)], {} as CoreServices, {
      log,
      shutdownTimeoutMs: 5000,
    });
    try {
      assert.equal((await fetch(`${http.url}/readyz`)).status, 200);
      await audit.record({ actor: 'system', action: 'gateway.start', resource: 'gateway', decision: 'info' });
      const denied = await fetch(`${http.url}/api/audit-logs`, {
        headers: { authorization: 'Bearer nobody' },
      });
      assert.equal(denied.status, 401);
      const page = await fetch(`${http.url}/api/audit-logs`, {
        headers: { authorization: 'Bearer auditor' },
      });
      // The start, and the refused bearer token (failed authentications are audited).
      const { events } = (await page.json()) as { events: { action: string; decision: string }[] };
      assert.deepEqual(
        events.map((e) => `${e.action} ${e.decision}`).toSorted((a, b) => a.localeCompare(b)),
        ['auth.failure deny', 'gateway.start info'],
      );

      const signals = new EventEmitter();
      const codes: number[] = [];
      let exited!: () => void;
      const exit = new Promise<void>((resolve) => {
        exited = resolve;
      });
      installSignalHandlers({
        target: signals,
        onShutdown: () => runner.stop(),
        exit: (code) => {
          codes.push(code);
          exited();
        },
      });
      const pending = fetch(`${http.url}/slow`);
      await inHandler;
      signals.emit('SIGTERM', 'SIGTERM');
      for (let i = 0; i < 1000 && http.app.server.listening; i++) await new Promise((r) => setImmediate(r));
      await assert.rejects(fetch(`${http.url}/healthz`), /fetch failed/);
      assert.deepEqual(codes, [], 'no exit while a request is in flight');
      release();
      assert.deepEqual(await (await pending).json(), { done: true });
      await exit;
      assert.deepEqual(codes, [0]);
    } finally {
      await runner.stop();
      await limiters.close();
      await db.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
