import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { testServices } from '#core/config';
import { runDriverContract } from './contract.ts';
import { createNatsDriver } from './nats.ts';

const { natsUrl, requireServices } = testServices();
const skip = natsUrl === undefined && !requireServices ? 'GATEHOUSE_TEST_NATS_URL not set' : false;
let now = 1_700_000_000_000;
const clock = { now: () => now };
const bucket = `test_${randomUUID().replaceAll('-', '')}`;

runDriverContract(
  'nats',
  async () => {
    assert.ok(natsUrl, 'GATEHOUSE_TEST_NATS_URL not set');
    const driver = createNatsDriver({ url: natsUrl, clock, timeoutMs: 10_000, bucket });
    return {
      driver,
      advance: async (ms) => {
        now += ms;
      },
      close: async () => {
        await driver.destroy();
        await driver.close();
      },
    };
  },
  { skip },
);

void test('nats sweep purges expired heads and their chunks', { skip }, async () => {
  assert.ok(natsUrl, 'GATEHOUSE_TEST_NATS_URL not set');
  const driver = createNatsDriver({ url: natsUrl, clock, timeoutMs: 10_000, bucket: `${bucket}_sweep` });
  const o = { signal: AbortSignal.timeout(10_000) };
  try {
    await driver.set('ns', 'big', new Uint8Array(3 * 1024 * 1024), { ...o, ttlMs: 10 });
    await driver.set('ns', 'kept', new Uint8Array([1]), o);
    now += 11;
    assert.equal(await driver.sweep(), 1);
    assert.equal(await driver.sweep(), 0);
    assert.equal(await driver.exists('ns', 'kept', o), true);
    await driver.destroy();
  } finally {
    await driver.close();
  }
});
