import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FastifyReply } from 'fastify';
import { silentLogger } from '#core/log';
import { createMetrics } from '#core/metrics';
import type { Section } from './deps.ts';
import { createApiRateLimit, type RateLimitSettings } from './limits.ts';
import { memoryLimiters } from './test-fixtures.ts';

function reloadable(initial: RateLimitSettings) {
  let current = initial;
  const listeners = new Set<(next: RateLimitSettings, previous: RateLimitSettings) => void>();
  const section: Section<RateLimitSettings> = {
    current: () => current,
    subscribe: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return {
    section,
    listeners,
    swap(next: RateLimitSettings) {
      const previous = current;
      current = next;
      for (const l of listeners) l(next, previous);
    },
  };
}

function fakeReply() {
  const headers: Record<string, string> = {};
  return {
    headers,
    reply: { header: (k: string, v: string) => (headers[k] = v) } as unknown as FastifyReply,
  };
}

const failures = () =>
  createMetrics({ processMetrics: false }).counter({
    name: 'gatehouse_t_total',
    help: 'T',
    labelNames: ['limiter'],
  });

void describe('createApiRateLimit', () => {
  void it('applies a reloaded rate and burst to the next request, and 0 disables limiting', async () => {
    const config = reloadable({ rate: 1, burst: 1 });
    let now = 0;
    const limit = createApiRateLimit(
      config.section,
      memoryLimiters(() => now),
      silentLogger(),
      failures(),
    );
    const { reply, headers } = fakeReply();
    await limit.enforce('ip:1', reply);
    await assert.rejects(limit.enforce('ip:1', reply), { code: 'GW_ERR_RATE_LIMITED' });
    config.swap({ rate: 1, burst: 5 });
    // A reload keeps the client's (empty) bucket: a larger burst is earned at the rate, not given.
    await assert.rejects(limit.enforce('ip:1', reply), { code: 'GW_ERR_RATE_LIMITED' });
    now += 3000;
    await limit.enforce('ip:1', reply);
    assert.equal(headers['ratelimit-limit'], '5');
    assert.equal(headers['ratelimit-remaining'], '2');
    config.swap({ rate: 0, burst: 5 });
    for (let i = 0; i < 20; i++) await limit.enforce('ip:1', reply);
    limit.close();
    assert.equal(config.listeners.size, 0);
  });
});
