import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createPostgresDatabase, createSqliteDatabase, type Database } from '#core/storage';
import { isolatedPostgres, requirePostgres } from '#testing/services';
import { VersionFacts } from './version-facts.ts';

const postgres = requirePostgres();

const stores: {
  name: string;
  options?: { skip?: string };
  open: () => Promise<{ db: Database; done: () => Promise<void> }>;
}[] = [
  {
    name: 'SQLite',
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'facts-'));
      const db = await createSqliteDatabase({ file: join(dir, 'core.db') });
      return { db, done: async () => (await db.close(), await rm(dir, { recursive: true, force: true })) };
    },
  },
  {
    name: 'PostgreSQL',
    options: postgres.options,
    async open() {
      const schema = await isolatedPostgres(postgres.need(), 'facts');
      const db = createPostgresDatabase({ url: schema.url, poolSize: 2, connectTimeoutMs: 5000 });
      return { db, done: async () => (await db.close(), await schema.drop()) };
    },
  },
];

for (const store of stores) {
  void describe(`registry version facts on ${store.name}`, store.options ?? {}, () => {
    void it('keeps the first value remembered and the last value set', async () => {
      const { db, done } = await store.open();
      try {
        const facts = new VersionFacts(db);
        const first = await facts.remember('go', 'example.test/m', 'first-seen', new Map([['v1.0.0', 'a']]));
        assert.equal(first.get('v1.0.0'), 'a');
        const again = await facts.remember(
          'go',
          'example.test/m',
          'first-seen',
          new Map([
            ['v1.0.0', 'b'],
            ['v1.0.1', 'c'],
          ]),
        );
        assert.deepEqual(Object.fromEntries(again), { 'v1.0.0': 'a', 'v1.0.1': 'c' });
        await facts.set('go', 'example.test/m', '', 'list-fetched', '2026-01-01T00:00:00.000Z');
        await facts.set('go', 'example.test/m', '', 'list-fetched', '2026-01-02T00:00:00.000Z');
        assert.equal(await facts.get('go', 'example.test/m', '', 'list-fetched'), '2026-01-02T00:00:00.000Z');
        // One package's facts never touch another's.
        assert.equal(await facts.get('go', 'example.test/other', '', 'list-fetched'), undefined);
        assert.equal((await facts.all('go', 'example.test/m', 'list-fetched')).size, 1);
        // Every fact of one version in one read.
        await facts.remember('go', 'example.test/m', 'h1', new Map([['v1.0.0', 'h1:x']]));
        assert.deepEqual(Object.fromEntries(await facts.of('go', 'example.test/m', 'v1.0.0')), {
          'first-seen': 'a',
          h1: 'h1:x',
        });
        assert.equal((await facts.of('go', 'example.test/m', 'v9.9.9')).size, 0);
      } finally {
        await done();
      }
    });
  });
}
