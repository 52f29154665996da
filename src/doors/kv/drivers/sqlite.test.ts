import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'node:test';
import { runDriverContract } from './contract.ts';
import { createSqliteDriver } from './sqlite.ts';

let now = 1_700_000_000_000;
const clock = { now: () => now };

runDriverContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-sqlite-'));
  const driver = createSqliteDriver({ path: join(dir, 'kv.sqlite'), clock });
  return {
    driver,
    advance: async (ms) => {
      now += ms;
    },
    close: async () => {
      await driver.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

void test('sqlite sweep deletes only expired rows and versions survive a reopen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-sqlite-'));
  const path = join(dir, 'kv.sqlite');
  const o = { signal: AbortSignal.timeout(5000) };
  try {
    const a = createSqliteDriver({ path, clock });
    await a.set('ns', 'short', new Uint8Array([1]), { ...o, ttlMs: 10 });
    const v = await a.set('ns', 'long', new Uint8Array([2]), o);
    now += 20;
    assert.equal(a.sweep(), 1);
    assert.equal(a.sweep(), 0);
    await a.close();
    const b = createSqliteDriver({ path, clock });
    assert.ok((await b.set('ns', 'long', new Uint8Array([3]), o)) > v);
    await b.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('sqlite waits for another process write lock no longer than its busy timeout, then UNAVAILABLE', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-sqlite-'));
  const path = join(dir, 'kv.sqlite');
  const o = { signal: AbortSignal.timeout(5000) };
  const driver = createSqliteDriver({ path, clock, busyTimeoutMs: 150 });
  const holder = new DatabaseSync(path);
  try {
    await driver.set('ns', 'k', new Uint8Array([1]), o);
    holder.exec('PRAGMA busy_timeout = 0; BEGIN IMMEDIATE');
    const started = performance.now();
    await assert.rejects(driver.set('ns', 'k', new Uint8Array([2]), o), (error: unknown) => {
      assert.equal((error as { code?: string }).code, 'GW_ERR_KV_BACKEND_UNAVAILABLE');
      return true;
    });
    const waited = performance.now() - started;
    // The default (2 s) would block the event loop that long; the driver's deadline bounds it.
    assert.ok(waited >= 100 && waited < 1500, `waited ${Math.round(waited)} ms`);
    // Readers are not blocked by the writer (WAL), and the old value is intact.
    assert.deepEqual([...((await driver.get('ns', 'k', o))?.value ?? [])], [1]);
    holder.exec('ROLLBACK');
    await driver.set('ns', 'k', new Uint8Array([3]), o);
    assert.deepEqual([...((await driver.get('ns', 'k', o))?.value ?? [])], [3]);
  } finally {
    holder.close();
    await driver.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
