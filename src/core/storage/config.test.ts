import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigValidationError, loadConfig, object } from '#core/config';
import { createDatabase, storageConfigSchema } from './config.ts';

const schema = object({ storage: storageConfigSchema }, 'Test document.');

void describe('storageConfigSchema', () => {
  void it('defaults to the embedded database with sane limits', async () => {
    const { config } = await loadConfig(schema, { text: '{}', env: {} });
    assert.deepEqual(config.storage, {
      url: '',
      poolSize: 10,
      connectTimeout: 5000,
      statementTimeout: 30_000,
      busyTimeout: 5000,
    });
  });

  void it('takes the URL from GATEHOUSE_STORAGE_URL and redacts it in errors', async () => {
    const env = { GATEHOUSE_STORAGE_URL: 'postgres://app:s3cret@db:5432/gatehouse' };
    const { config } = await loadConfig(schema, { text: '{}', env });
    assert.equal(config.storage.url, env.GATEHOUSE_STORAGE_URL);
    await assert.rejects(
      loadConfig(schema, { text: 'storage:\n  url: "mysql://root:hunter2@db/x"\n', env: {} }),
      (error: Error) => {
        assert.ok(error instanceof ConfigValidationError);
        assert.match(error.message, /storage\.url/);
        assert.doesNotMatch(error.message, /hunter2/);
        return true;
      },
    );
  });

  void it('rejects out-of-range pool sizes and malformed durations', async () => {
    for (const text of [
      'storage: { poolSize: 0 }',
      'storage: { connectTimeout: "soon" }',
      'storage: { nope: 1 }',
    ]) {
      await assert.rejects(loadConfig(schema, { text, env: {} }), ConfigValidationError, text);
    }
  });
});

void describe('createDatabase', () => {
  void it('opens gatehouse.db in the data folder when the URL is empty, creating the folder', async () => {
    const root = await mkdtemp(join(tmpdir(), 'gatehouse-data-'));
    const dataDir = join(root, 'nested', '.gatehouse');
    try {
      const { config } = await loadConfig(schema, { text: '{}', env: {} });
      const db = await createDatabase(config.storage, { dataDir });
      assert.equal(db.dialect, 'sqlite');
      await db.ping();
      await db.close();
      assert.ok(existsSync(join(dataDir, 'gatehouse.db')));
      const other = await createDatabase({ ...config.storage, url: 'sqlite:other.db' }, { dataDir });
      await other.close();
      assert.ok(existsSync(join(dataDir, 'other.db')));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  void it('chooses PostgreSQL for a postgres:// URL without connecting yet', async () => {
    const { config } = await loadConfig(schema, { text: '{}', env: {} });
    const db = await createDatabase(
      { ...config.storage, url: 'postgres://nobody@127.0.0.1:9/none' },
      { dataDir: tmpdir() },
    );
    assert.equal(db.dialect, 'postgres');
    await db.close();
  });
});
