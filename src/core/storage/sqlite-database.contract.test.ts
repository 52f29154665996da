import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { databaseContract } from '#testing/contract-database';
import type { Database } from './port.ts';
import { createSqliteDatabase } from './sqlite-database.ts';

databaseContract(
  'SQLite (node:sqlite)',
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gatehouse-contract-'));
    const file = join(dir, 'gatehouse.db');
    const opened: Database[] = [];
    const open = async () => {
      const db = await createSqliteDatabase({ file, busyTimeoutMs: 10_000 });
      opened.push(db);
      return db;
    };
    const db = await open();
    return {
      db,
      openAnother: open,
      async cleanup() {
        await Promise.all(opened.map((d) => d.close()));
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
  {
    // A folder that does not exist cannot hold the file: SQLITE_CANTOPEN.
    unreachable: () =>
      createSqliteDatabase({ file: join(tmpdir(), 'gatehouse-missing-dir-0', 'x', 'gatehouse.db') }),
  },
);
