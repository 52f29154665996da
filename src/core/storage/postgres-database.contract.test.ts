import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sql } from 'kysely';
import { databaseContract } from '#testing/contract-database';
import { closedPort, isolatedPostgres, requirePostgres, terminatePostgresBackends } from '#testing/services';
import type { Database } from './port.ts';
import { createPostgresDatabase } from './postgres-database.ts';

const postgres = requirePostgres();

databaseContract(
  'PostgreSQL (pg pool)',
  async () => {
    const base = postgres.need();
    const schema = await isolatedPostgres(base, 'storage');
    const opened: Database[] = [];
    const open = () => {
      const db = createPostgresDatabase({ url: schema.url, poolSize: 4, connectTimeoutMs: 5000 });
      opened.push(db);
      return Promise.resolve(db);
    };
    const db = await open();
    return {
      db,
      openAnother: open,
      dropConnections: async () => {
        const terminated = await terminatePostgresBackends(base, schema.applicationName);
        assert.ok(terminated > 0, 'the pool had open connections to drop');
      },
      async cleanup() {
        await Promise.all(opened.map((d) => d.close()));
        await schema.drop();
      },
    };
  },
  {
    testOptions: postgres.options,
    unreachable: async () =>
      createPostgresDatabase({
        url: `postgres://postgres@127.0.0.1:${await closedPort()}/test`,
        connectTimeoutMs: 2000,
      }),
  },
);

void describe('PostgreSQL timeouts', postgres.options, () => {
  void it('cancels a statement past statementTimeout with GW_ERR_STORAGE_UNAVAILABLE', async () => {
    const db = createPostgresDatabase({ url: postgres.need(), statementTimeoutMs: 50 });
    try {
      await assert.rejects(sql`select pg_sleep(5)`.execute(db.kysely()), {
        code: 'GW_ERR_STORAGE_UNAVAILABLE',
      });
      await db.ping(2000);
    } finally {
      await db.close();
    }
  });
});
