/**
 * The one contract suite of the Database port, run against every implementation (SQLite and
 * the real PostgreSQL server). Each test migrates its own tables, so a fixture only has to
 * provide an empty database.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Database, isUniqueViolation, type Migration, type SqlDialect } from '#core/storage';
import type { Kysely } from 'kysely';

/** One empty database for the contract, and ways to poke at it. */
export interface DatabaseFixture {
  readonly db: Database;
  /** Opens a second Database on the same storage, as another replica or process would. */
  openAnother(): Promise<Database>;
  /** Makes the server drop every connection of this fixture (PostgreSQL only). */
  readonly dropConnections?: () => Promise<void>;
  /** Closes everything and removes the storage. */
  cleanup(): Promise<void>;
}

/** How to run the contract for one implementation. */
export interface DatabaseContractOptions {
  /** `{ skip: reason }` when the backing service is absent. */
  readonly testOptions?: { readonly skip?: string };
  /** Creates a Database that cannot reach its storage; may reject or fail later. */
  readonly unreachable: () => Promise<Database>;
}

// oxlint-disable-next-line typescript/no-explicit-any -- contract tables are created at run time.
type AnyDb = Kysely<any>;

interface CodedError {
  readonly code?: string;
  readonly message: string;
}

function hasCode(code: string) {
  return (error: CodedError) => {
    assert.equal(error.code, code, `expected ${code}, got ${error.code}: ${error.message}`);
    return true;
  };
}

const blobType = (dialect: SqlDialect) => (dialect === 'postgres' ? 'bytea' : 'blob');

/** A migration set with a unique module name so tests never share tables. */
function tableSet(
  module: string,
  table: string,
  dialect: SqlDialect,
): { module: string; migrations: Migration[] } {
  return {
    module,
    migrations: [
      {
        id: '0001_create',
        async up(db) {
          await db.schema
            .createTable(table)
            .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
            .addColumn('name', 'text', (c) => c.notNull().unique())
            .addColumn('body', 'text')
            .addColumn('data', blobType(dialect))
            .addColumn('created_at', 'bigint', (c) => c.notNull().defaultTo(0))
            .addColumn('n', 'integer', (c) => c.notNull().defaultTo(0))
            .execute();
        },
      },
    ],
  };
}

let counter = 0;
function names(prefix: string): { module: string; table: string } {
  counter += 1;
  return { module: `${prefix}${counter}`, table: `contract_${prefix}${counter}` };
}

async function withTable(db: Database, prefix: string): Promise<{ k: AnyDb; table: string }> {
  const { module, table } = names(prefix);
  await db.migrate(tableSet(module, table, db.dialect));
  return { k: db.kysely(), table };
}

/** Registers the Database contract suite for one implementation. */
export function databaseContract(
  name: string,
  factory: () => Promise<DatabaseFixture>,
  options: DatabaseContractOptions,
): void {
  void describe(`Database contract: ${name}`, options.testOptions ?? {}, () => {
    let fixture: DatabaseFixture;
    let db: Database;
    before(async () => {
      fixture = await factory();
      db = fixture.db;
    });
    after(async () => {
      await fixture?.cleanup();
    });

    void it('creates, reads, updates and deletes rows', async () => {
      const { k, table } = await withTable(db, 'crud');
      await k.insertInto(table).values({ id: 'a', name: 'alpha', created_at: 1 }).execute();
      await k.insertInto(table).values({ id: 'b', name: 'beta', created_at: 2 }).execute();
      const rows = await k.selectFrom(table).select(['id', 'name']).orderBy('id').execute();
      assert.deepEqual(rows, [
        { id: 'a', name: 'alpha' },
        { id: 'b', name: 'beta' },
      ]);
      const updated = await k
        .updateTable(table)
        .set({ name: 'ALPHA' })
        .where('id', '=', 'a')
        .executeTakeFirst();
      assert.equal(updated.numUpdatedRows, 1n);
      const deleted = await k.deleteFrom(table).where('id', '=', 'b').executeTakeFirst();
      assert.equal(deleted.numDeletedRows, 1n);
      assert.deepEqual(await k.selectFrom(table).select(['id', 'name']).execute(), [
        { id: 'a', name: 'ALPHA' },
      ]);
      const missing = await k.selectFrom(table).selectAll().where('id', '=', 'zzz').executeTakeFirst();
      assert.equal(missing, undefined);
    });

    void it('commits a transaction and rolls one back when it throws', async () => {
      const { k, table } = await withTable(db, 'trx');
      const result = await db.transaction(async (trx) => {
        await trx.insertInto(table).values({ id: '1', name: 'one' }).execute();
        return 'done';
      });
      assert.equal(result, 'done');
      const boom = new Error('boom');
      await assert.rejects(
        db.transaction(async (trx) => {
          await trx.insertInto(table).values({ id: '2', name: 'two' }).execute();
          throw boom;
        }),
        (error) => error === boom,
      );
      assert.deepEqual(await k.selectFrom(table).select('id').execute(), [{ id: '1' }]);
    });

    void it('keeps concurrent transactions apart: a rollback never undoes another commit', async () => {
      const { k, table } = await withTable(db, 'iso');
      const runs = Array.from({ length: 6 }, (_, i) =>
        db.transaction(async (trx) => {
          await trx
            .insertInto(table)
            .values({ id: `r${i}`, name: `row ${i}` })
            .execute();
          // Yield between statements so an unserialized driver would interleave here.
          await new Promise((resolve) => setImmediate(resolve));
          await trx
            .insertInto(table)
            .values({ id: `s${i}`, name: `second ${i}` })
            .execute();
          if (i % 2 === 1) throw new Error(`abort ${i}`);
        }),
      );
      const outcomes = await Promise.allSettled(runs);
      assert.deepEqual(
        outcomes.map((o) => o.status),
        ['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled', 'rejected'],
      );
      const ids = (await k.selectFrom(table).select('id').orderBy('id').execute()).map((r) => r.id);
      assert.deepEqual(ids, ['r0', 'r2', 'r4', 's0', 's2', 's4']);
    });

    void it('maps a unique violation to GW_ERR_STORAGE_CONFLICT, in and out of transactions', async () => {
      const { k, table } = await withTable(db, 'uniq');
      await k.insertInto(table).values({ id: 'x', name: 'taken' }).execute();
      await assert.rejects(k.insertInto(table).values({ id: 'x', name: 'other' }).execute(), (error) => {
        assert.ok(isUniqueViolation(error));
        return hasCode('GW_ERR_STORAGE_CONFLICT')(error as CodedError);
      });
      await assert.rejects(
        db.transaction((trx) => trx.insertInto(table).values({ id: 'y', name: 'taken' }).execute()),
        hasCode('GW_ERR_STORAGE_CONFLICT'),
      );
      // The failed transaction left nothing behind, and the connection is usable.
      assert.equal((await k.selectFrom(table).select('id').execute()).length, 1);
      assert.equal(isUniqueViolation(new Error('other')), false);
    });

    migrationTests(
      () => db,
      () => fixture,
    );
    roundTripTests(() => db);

    void it('answers ping, and fails ping after close', async () => {
      await db.ping(2000);
      const other = await fixture.openAnother();
      await other.ping(2000);
      await other.close();
      await assert.rejects(other.ping(2000));
    });

    void it('fails fast with GW_ERR_STORAGE_UNAVAILABLE when the storage cannot be reached', async () => {
      const started = performance.now();
      let unreachable: Database | undefined;
      try {
        unreachable = await options.unreachable();
        await assert.rejects(unreachable.ping(5000), hasCode('GW_ERR_STORAGE_UNAVAILABLE'));
        await assert.rejects(
          unreachable.kysely().selectFrom('x').selectAll().execute(),
          hasCode('GW_ERR_STORAGE_UNAVAILABLE'),
        );
      } catch (error) {
        if (unreachable !== undefined) throw error;
        hasCode('GW_ERR_STORAGE_UNAVAILABLE')(error as CodedError);
      } finally {
        await unreachable?.close();
      }
      assert.ok(performance.now() - started < 4000, 'an unreachable database must fail fast, not hang');
    });

    void it('recovers after the server drops its connections', async (t) => {
      if (fixture.dropConnections === undefined) {
        t.skip('an embedded database has no connections to drop');
        return;
      }
      const { k, table } = await withTable(db, 'drop');
      await k.insertInto(table).values({ id: 'before', name: 'before' }).execute();
      await fixture.dropConnections();
      // The pool may hand out sockets it has not yet seen die (at most one per pooled
      // connection); such attempts must fail as UNAVAILABLE, and a bounded number of retries
      // must then succeed on a fresh connection.
      let rows: unknown[] | undefined;
      for (let attempt = 0; attempt < 5 && rows === undefined; attempt += 1) {
        try {
          rows = await k.selectFrom(table).select('id').execute();
        } catch (error) {
          hasCode('GW_ERR_STORAGE_UNAVAILABLE')(error as CodedError);
        }
      }
      assert.deepEqual(rows, [{ id: 'before' }]);
    });
  });
}

function migrationTests(getDb: () => Database, getFixture: () => DatabaseFixture): void {
  void it('applies migrations once, in lexical id order, whatever order they are listed in', async () => {
    const db = getDb();
    const { module, table } = names('order');
    const ran: string[] = [];
    const step = (id: string, statement: (k: AnyDb) => Promise<unknown>): Migration => ({
      id,
      async up(k) {
        ran.push(id);
        await statement(k);
      },
    });
    const migrations = [
      step('0003_index', (k) => k.schema.createIndex(`${table}_v`).on(table).column('v').execute()),
      step('0001_create', (k) =>
        k.schema
          .createTable(table)
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .execute(),
      ),
      step('0002_column', (k) => k.schema.alterTable(table).addColumn('v', 'text').execute()),
    ];
    assert.deepEqual(await db.migrate({ module, migrations }), ['0001_create', '0002_column', '0003_index']);
    assert.deepEqual(ran, ['0001_create', '0002_column', '0003_index']);
    assert.deepEqual(await db.migrate({ module, migrations }), []);
    const later = [
      ...migrations,
      step('0004_seed', (k) => k.insertInto(table).values({ id: 1, v: 'x' }).execute()),
    ];
    assert.deepEqual(await db.migrate({ module, migrations: later }), ['0004_seed']);
    assert.deepEqual(ran, ['0001_create', '0002_column', '0003_index', '0004_seed']);
    const recorded = await db
      .kysely()
      .selectFrom('gatehouse_migrations')
      .select(['id', 'applied_at'])
      .where('module', '=', module)
      .orderBy('id')
      .execute();
    assert.deepEqual(
      recorded.map((r) => r.id),
      ['0001_create', '0002_column', '0003_index', '0004_seed'],
    );
    assert.ok(recorded.every((r) => typeof r.applied_at === 'number' && r.applied_at > 0));
  });

  void it('refuses a database that has a migration this build does not know', async () => {
    const db = getDb();
    const { module, table } = names('down');
    const full = tableSet(module, table, db.dialect);
    const newer = { module, migrations: [...full.migrations, { id: '0002_future', up: async () => {} }] };
    await db.migrate(newer);
    await assert.rejects(db.migrate(full), (error: CodedError) => {
      hasCode('GW_ERR_STORAGE_MIGRATION_UNKNOWN')(error);
      assert.match(error.message, new RegExp(`"${module}/0002_future"`));
      return true;
    });
  });

  void it('rolls back a failing migration and records nothing for it', async () => {
    const db = getDb();
    const { module, table } = names('fail');
    const migrations: Migration[] = [
      {
        id: '0001_half',
        async up(k) {
          await k.schema.createTable(table).addColumn('id', 'integer').execute();
          await k.insertInto(`${table}_missing`).values({ id: 1 }).execute();
        },
      },
    ];
    await assert.rejects(db.migrate({ module, migrations }), hasCode('GW_ERR_STORAGE_MIGRATION_FAILED'));
    const recorded = await db
      .kysely()
      .selectFrom('gatehouse_migrations')
      .select('id')
      .where('module', '=', module)
      .execute();
    assert.deepEqual(recorded, []);
    // The table created before the failure was rolled back with it (transactional DDL).
    await assert.rejects(db.kysely().selectFrom(table).selectAll().execute());
    await assert.rejects(db.migrate({ module, migrations: [...migrations, ...migrations] }), TypeError);
  });

  void it('lets several replicas migrate at once: each migration runs exactly once', async () => {
    const fixture = getFixture();
    const { module, table } = names('race');
    const replicas = await Promise.all(Array.from({ length: 4 }, () => fixture.openAnother()));
    try {
      const migrations: Migration[] = [
        {
          id: '0001_create',
          // No IF NOT EXISTS: a second run would fail, so the test sees any double application.
          up: async (k) => {
            await k.schema.createTable(table).addColumn('id', 'varchar(32)').execute();
          },
        },
        ...['0002_a', '0003_b', '0004_c'].map((id) => ({
          id,
          up: async (k: AnyDb) => {
            await k.insertInto(table).values({ id }).execute();
          },
        })),
      ];
      const results = await Promise.all(replicas.map((r) => r.migrate({ module, migrations })));
      const applied = results.flat().toSorted();
      assert.deepEqual(applied, ['0001_create', '0002_a', '0003_b', '0004_c']);
      const rows = await getDb().kysely().selectFrom(table).select('id').orderBy('id').execute();
      assert.deepEqual(rows, [{ id: '0002_a' }, { id: '0003_b' }, { id: '0004_c' }]);
    } finally {
      await Promise.all(replicas.map((r) => r.close()));
    }
  });
}

function roundTripTests(getDb: () => Database): void {
  void it('round-trips JSON text, Unicode text, blobs and epoch-millisecond timestamps', async () => {
    const { k, table } = await withTable(getDb(), 'types');
    const json = JSON.stringify({ name: 'ünïcødé', tags: ['a', 'b'], nested: { n: 1.5, nil: null } });
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const now = 1_763_900_000_123;
    await k
      .insertInto(table)
      .values({ id: 'j', name: 'emoji 🛡️ and "quotes"', body: json, data: all, created_at: now })
      .execute();
    await k
      .insertInto(table)
      .values({ id: 'e', name: 'empty', body: '', data: Buffer.alloc(0), created_at: 0 })
      .execute();
    const row = await k.selectFrom(table).selectAll().where('id', '=', 'j').executeTakeFirstOrThrow();
    assert.equal(row.name, 'emoji 🛡️ and "quotes"');
    assert.deepEqual(JSON.parse(row.body), JSON.parse(json));
    assert.ok(Buffer.isBuffer(row.data), 'blobs come back as Buffer');
    assert.ok(all.equals(row.data));
    assert.equal(row.created_at, now);
    const empty = await k.selectFrom(table).selectAll().where('id', '=', 'e').executeTakeFirstOrThrow();
    assert.equal(empty.body, '');
    assert.equal(empty.data.length, 0);
    const count = await k
      .selectFrom(table)
      .select((e) => e.fn.countAll().as('c'))
      .executeTakeFirstOrThrow();
    assert.equal(Number(count.c), 2);
  });

  void it('pages in a stable order with keyset pagination', async () => {
    const { k, table } = await withTable(getDb(), 'page');
    const ids = Array.from({ length: 25 }, (_, i) => `item-${String(i).padStart(3, '0')}`);
    // Insert in a scrambled order, with timestamp ties, so only ORDER BY gives the order.
    const scrambled = ids.map((id, i) => ({ id, i })).toSorted((a, b) => ((a.i * 7) % 25) - ((b.i * 7) % 25));
    for (const { id, i } of scrambled) {
      await k
        .insertInto(table)
        .values({ id, name: id, created_at: 1000 + Math.floor(i / 3) })
        .execute();
    }
    const seen: string[] = [];
    let cursor: { created_at: number; id: string } | undefined;
    for (let page = 0; page < 10; page += 1) {
      let q = k.selectFrom(table).select(['id', 'created_at']).orderBy('created_at').orderBy('id').limit(10);
      if (cursor !== undefined) {
        const c = cursor;
        q = q.where((e) =>
          e.or([
            e('created_at', '>', c.created_at),
            e.and([e('created_at', '=', c.created_at), e('id', '>', c.id)]),
          ]),
        );
      }
      const rows = await q.execute();
      seen.push(...rows.map((r) => r.id as string));
      const last = rows.at(-1);
      if (rows.length < 10 || last === undefined) break;
      cursor = { created_at: last.created_at as number, id: last.id as string };
    }
    assert.deepEqual(seen, ids);
  });
}
