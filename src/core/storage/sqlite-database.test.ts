import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sql } from 'kysely';
import { createSqliteDatabase } from './sqlite-database.ts';

void describe('createSqliteDatabase', () => {
  void it('refuses a file that is not a database with GW_ERR_STORAGE_CORRUPT naming it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gatehouse-sqlite-'));
    try {
      const file = join(dir, 'gatehouse.db');
      await writeFile(file, Buffer.alloc(8192, 'not a database '));
      await assert.rejects(createSqliteDatabase({ file }), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'GW_ERR_STORAGE_CORRUPT');
        assert.match(error.message, new RegExp(`"${file.replaceAll(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`));
        return true;
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  void it('opens in WAL mode with foreign keys enforced', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gatehouse-sqlite-'));
    const db = await createSqliteDatabase({ file: join(dir, 'gatehouse.db') });
    try {
      const k = db.kysely();
      await k.schema
        .createTable('parent')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .execute();
      await k.schema
        .createTable('child')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('parent', 'integer', (c) => c.references('parent.id'))
        .execute();
      await assert.rejects(k.insertInto('child').values({ id: 1, parent: 42 }).execute(), /FOREIGN KEY/);
      const { rows } = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(k);
      assert.equal(rows[0]?.journal_mode, 'wal');
    } finally {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  void it('rejects a negative busy timeout', async () => {
    await assert.rejects(createSqliteDatabase({ file: ':memory:', busyTimeoutMs: -1 }), RangeError);
  });
});

void describe('SQLite write lock', () => {
  void it('waits for another connection without blocking the event loop, then gives up with UNAVAILABLE', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gatehouse-sqlite-'));
    const file = join(dir, 'gatehouse.db');
    const a = await createSqliteDatabase({ file });
    const b = await createSqliteDatabase({ file, busyTimeoutMs: 200 });
    try {
      await a.kysely().schema.createTable('t').addColumn('id', 'integer').execute();
      let release!: () => void;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      const holder = a.transaction(async (trx) => {
        await trx.insertInto('t').values({ id: 1 }).execute();
        await held;
      });
      // While a holds the write lock, b's write must wait (asynchronously) and then fail.
      let ticks = 0;
      const ticker = setInterval(() => {
        ticks += 1;
      }, 10);
      await assert.rejects(
        b.kysely().insertInto('t').values({ id: 2 }).execute(),
        (error: Error & { code?: string }) => {
          assert.equal(error.code, 'GW_ERR_STORAGE_UNAVAILABLE');
          return true;
        },
      );
      clearInterval(ticker);
      assert.ok(ticks >= 5, `the event loop kept running while waiting (${ticks} ticks)`);
      // Once the lock is released, b's writes go through.
      const late = b.kysely().insertInto('t').values({ id: 3 }).execute();
      release();
      await holder;
      await late;
      const ids = await a.kysely().selectFrom('t').select('id').orderBy('id').execute();
      assert.deepEqual(ids, [{ id: 1 }, { id: 3 }]);
    } finally {
      await a.close();
      await b.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** Runs one migrator in a child process and returns the ids it applied. */
async function migrateInChild(file: string): Promise<string[]> {
  const moduleUrl = new URL('./sqlite-database.ts', import.meta.url).href;
  const script = `
    import { createSqliteDatabase } from ${JSON.stringify(moduleUrl)};
    const db = await createSqliteDatabase({ file: process.argv[1], busyTimeoutMs: 30000 });
    const pause = () => new Promise((resolve) => setTimeout(resolve, 10));
    const applied = await db.migrate({ module: 'procs', migrations: [
      { id: '0001_create', up: async (k) => { await k.schema.createTable('proc_race').addColumn('id', 'text').execute(); await pause(); } },
      ...['0002_a', '0003_b', '0004_c'].map((id) => ({ id, up: async (k) => { await k.insertInto('proc_race').values({ id }).execute(); await pause(); } })),
    ] });
    process.stdout.write(JSON.stringify(applied));
    await db.close();
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, file], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0, err);
  return JSON.parse(out) as string[];
}

void describe('SQLite migrations across processes', () => {
  void it('applies each migration exactly once when several processes start together', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gatehouse-sqlite-procs-'));
    const file = join(dir, 'gatehouse.db');
    try {
      const results = await Promise.all(Array.from({ length: 4 }, () => migrateInChild(file)));
      assert.deepEqual(results.flat().toSorted(), ['0001_create', '0002_a', '0003_b', '0004_c']);
      const db = await createSqliteDatabase({ file });
      try {
        const rows = await db.kysely().selectFrom('proc_race').select('id').orderBy('id').execute();
        assert.deepEqual(rows, [{ id: '0002_a' }, { id: '0003_b' }, { id: '0004_c' }]);
      } finally {
        await db.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
