import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createPostgresDatabase, createSqliteDatabase, type Database } from '#core/storage';
import { isolatedPostgres, requirePostgres } from '#testing/services';
import type { EdgeRoute } from './model.ts';
import { EDGE_MIGRATIONS, EdgeConflictError, EdgeStore } from './store.ts';

const route = (id: string, host: string): EdgeRoute => ({
  id,
  listener: 'main',
  host,
  mode: 'l7',
  backend: '127.0.0.1:8080',
  backendProtocol: 'h2c',
  backendProxyProtocol: true,
  certFile: '/certs/a.pem',
  keyFile: '/certs/a.key',
});

async function contract(db: Database): Promise<void> {
  await db.migrate(EDGE_MIGRATIONS);
  const store = new EdgeStore(db);
  const start = await store.revision();
  assert.equal(
    await store.seed(
      [route('seeded', 'a.test')],
      [{ id: 'p', route: 'seeded', kind: 'require-header', header: 'x-team' }],
    ),
    true,
  );
  assert.equal(await store.removeRoute('seeded'), true);
  assert.equal(await store.seed([route('seeded', 'a.test')], []), false, 'seeding happens once per database');
  await store.addRoute(route('api', 'api.test'));
  await assert.rejects(store.addRoute(route('api', 'other.test')), EdgeConflictError);
  await assert.rejects(
    store.addRoute(route('clash', 'api.test')),
    EdgeConflictError,
    'one host per listener',
  );
  await store.addPolicy({ id: 'ua', route: 'api', kind: 'block-user-agent', value: 'bot' });
  await store.setMaxConnections('main', 5);
  await store.setMaxConnections('main', 7);
  const snapshot = await store.snapshot();
  assert.deepEqual(snapshot.routes, [route('api', 'api.test')]);
  assert.deepEqual(snapshot.policies, [{ id: 'ua', route: 'api', kind: 'block-user-agent', value: 'bot' }]);
  assert.deepEqual(snapshot.limits, [{ listener: 'main', maxConnections: 7 }]);
  assert.ok(snapshot.revision > start, 'every change moves the revision');
  assert.equal(await store.removeRoute('api'), true);
  assert.deepEqual((await store.snapshot()).policies, [], "a route's policies go with it");
  assert.equal(await store.removePolicy('ua'), false);
}

void describe('edge store', () => {
  void it('on SQLite', async () => {
    const db = await createSqliteDatabase({ file: ':memory:' });
    try {
      await contract(db);
    } finally {
      await db.close();
    }
  });

  const postgres = requirePostgres();
  void it('on PostgreSQL', postgres.options, async () => {
    const schema = await isolatedPostgres(postgres.need(), 'edge_store');
    const db = createPostgresDatabase({ url: schema.url });
    try {
      await contract(db);
    } finally {
      await db.close();
      await schema.drop();
    }
  });
});
