import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { requireNats, requirePostgres, requireRedis } from './services.ts';

const base = { postgresUrl: undefined, redisUrl: undefined, natsUrl: undefined, requireServices: false };

void describe('service requirements', () => {
  void it('skips by name when the URL is absent and services are optional', () => {
    const redis = requireRedis(base);
    assert.deepEqual(redis.options, { skip: 'GATEHOUSE_TEST_REDIS_URL not set' });
    assert.equal(redis.url, undefined);
    assert.throws(() => redis.need(), /GATEHOUSE_TEST_REDIS_URL not set/);
    assert.deepEqual(requirePostgres(base).options, { skip: 'GATEHOUSE_TEST_POSTGRES_URL not set' });
    assert.deepEqual(requireNats(base).options, { skip: 'GATEHOUSE_TEST_NATS_URL not set' });
  });

  void it('runs the suite and fails on need() when a required service is absent', () => {
    const pg = requirePostgres({ ...base, requireServices: true });
    assert.deepEqual(pg.options, {});
    assert.throws(() => pg.need(), /GATEHOUSE_TEST_POSTGRES_URL not set.*"postgres"/);
  });

  void it('gives the URL when present', () => {
    const nats = requireNats({ ...base, natsUrl: 'nats://127.0.0.1:4222' });
    assert.deepEqual(nats.options, {});
    assert.equal(nats.need(), 'nats://127.0.0.1:4222');
  });
});
