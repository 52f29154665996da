import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { AuditLog } from '#core/audit';
import { validateRaw } from '#core/config';
import { GatewayError } from '#core/errors';
import { silentLogger } from '#core/log';
import { createMetrics } from '#core/metrics';
import { createLimiterFactory } from '#core/ratelimit';
import { createKvAuditor } from './audit.ts';
import { kvConfigSchema } from './config.ts';
import { createGuard, type KvCallContext } from './guard.ts';

const audit: AuditLog = {
  record: () => Promise.resolve(),
  query: () => Promise.resolve({ events: [] }),
  verify: () => Promise.resolve({ ok: true, checked: 0 }),
};

/** A call from `clientIp` carrying an API key that the core refuses. */
const refusedKeyCall = (clientIp: string): KvCallContext => ({
  peer: { clientIp },
  requestHeader: { get: (name) => (name === 'x-api-key' ? 'gh_not-a-key' : null) },
  responseHeader: { set: () => undefined },
  within: (ms) => AbortSignal.timeout(ms),
  ended: () => undefined,
});

void describe('kv guard', () => {
  const limiters = createLimiterFactory();
  after(() => limiters.close());

  void it('counts credential verifications of an IPv6 client per /64, as every other per-client limit', async () => {
    const limits = validateRaw(
      kvConfigSchema,
      { listen: '127.0.0.1:0', limits: { authenticationsPerIp: 1 } },
      'test',
    ).limits;
    const m = createMetrics();
    const guard = createGuard({
      core: {
        auth: { authenticate: () => Promise.reject(new GatewayError('GW_ERR_AUTH_KEY_INVALID')) },
        authorize: () => ({ allowed: true, reason: 'test' }),
        log: silentLogger(),
        limiters,
      },
      auditor: createKvAuditor({
        audit,
        settings: () => ({ allowed: 'every', summaryInterval: 60_000, maxPending: 100, gatherWindow: 0 }),
        log: silentLogger(),
      }),
      limits: () => limits,
      metrics: {
        requests: m.counter({ name: 'r', help: 'r', labelNames: ['method', 'status', 'namespace'] }),
        duration: m.histogram({ name: 'd', help: 'd', labelNames: ['method', 'namespace'] }),
        authFailures: m.counter({ name: 'a', help: 'a', labelNames: ['reason'] }),
        activeConnections: m.gauge({ name: 'c', help: 'c' }),
        driverDuration: m.histogram({ name: 'dd', help: 'dd' }),
      },
    });
    const get = guard('Get', 'kv:read', { request: () => 1, response: () => 0 }, () => Promise.resolve({}));
    const codes: number[] = [];
    // A burst of two verifications (authenticationsPerIp 1), then one more from each address.
    for (const ip of ['2001:db8:1:2::1', '2001:db8:1:2::2', '2001:db8:1:2:ffff::3', '2001:db8:1:2::4']) {
      await get({ namespace: 'orders' }, refusedKeyCall(ip)).then(
        () => codes.push(0),
        (error: { code: number }) => codes.push(error.code),
      );
    }
    assert.deepEqual(codes, [16, 16, 8, 8]);
    // Another /64 has a budget of its own.
    await assert.rejects(get({ namespace: 'orders' }, refusedKeyCall('2001:db8:1:3::1')), { code: 16 });
  });
});
