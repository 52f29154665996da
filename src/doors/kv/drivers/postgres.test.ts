import assert from 'node:assert/strict';
import { test } from 'node:test';
import { testServices } from '#core/config';
import { runDriverContract } from './contract.ts';
import { createPostgresDriver } from './postgres.ts';

const { postgresUrl, requireServices } = testServices();
const skip = postgresUrl === undefined && !requireServices ? 'GATEHOUSE_TEST_POSTGRES_URL not set' : false;
let now = 1_700_000_000_000;
const clock = { now: () => now };

runDriverContract(
  'postgres',
  async () => {
    assert.ok(postgresUrl, 'GATEHOUSE_TEST_POSTGRES_URL not set');
    const driver = createPostgresDriver({ url: postgresUrl, clock, timeoutMs: 10_000, table: 'kv_contract' });
    return {
      driver,
      advance: async (ms) => {
        now += ms;
      },
      close: () => driver.close(),
    };
  },
  { skip },
);

void test('postgres sweep deletes expired rows that reads already hid', { skip }, async () => {
  assert.ok(postgresUrl, 'GATEHOUSE_TEST_POSTGRES_URL not set');
  const driver = createPostgresDriver({ url: postgresUrl, clock, timeoutMs: 10_000, table: 'kv_sweep' });
  const o = { signal: AbortSignal.timeout(10_000) };
  try {
    await driver.sweep();
    await driver.set('ns', 'gone', new Uint8Array([1]), { ...o, ttlMs: 10 });
    await driver.set('ns', 'kept', new Uint8Array([1]), o);
    now += 11;
    assert.equal(await driver.get('ns', 'gone', o), undefined);
    assert.equal(await driver.sweep(), 1);
    assert.equal(await driver.exists('ns', 'kept', o), true);
  } finally {
    await driver.close();
  }
});

void test('postgres batches writing the same keys in opposite orders never deadlock', { skip }, async () => {
  assert.ok(postgresUrl, 'GATEHOUSE_TEST_POSTGRES_URL not set');
  const driver = createPostgresDriver({
    url: postgresUrl,
    clock,
    timeoutMs: 10_000,
    table: 'kv_batch_order',
  });
  const o = () => ({ signal: AbortSignal.timeout(10_000) });
  try {
    const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
    const forward = keys.map((key) => ({ key, value: new Uint8Array([1]) }));
    const backward = [...forward].reverse().map((item) => ({ ...item, value: new Uint8Array([2]) }));
    for (let round = 0; round < 10; round += 1) {
      const results = await Promise.allSettled([
        driver.setMany('ns', forward, o()),
        driver.setMany('ns', backward, o()),
      ]);
      for (const r of results)
        assert.equal(r.status, 'fulfilled', String((r as PromiseRejectedResult).reason?.cause ?? ''));
    }
    // Every key holds the value of whichever batch committed last, with one version per batch.
    const entries = await driver.getMany('ns', keys, { ...o(), maxBytes: 1 << 20 });
    assert.equal(new Set(entries.map((e) => e?.value[0])).size, 1, 'one batch is wholly last');
  } finally {
    await driver.close();
  }
});
