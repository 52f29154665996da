import assert from 'node:assert/strict';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ConfigSection } from '#core/config';
import { ConfigStore, loadConfig, object } from '#core/config';
import { createSqliteDatabase, createPostgresDatabase, type Database } from '#core/storage';
import { isolatedPostgres, requirePostgres } from '#testing/services';
import { createBindingStore } from './binding-store.ts';
import { type RbacConfig, rbacConfigSchema } from './config.ts';

const clock = { now: () => 1_700_000_000_000 };

function section(initial: RbacConfig): ConfigSection<RbacConfig> & { push(next: RbacConfig): void } {
  let value = initial;
  const listeners = new Set<(next: RbacConfig, previous: RbacConfig) => void>();
  return {
    current: () => value,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    push(next) {
      const previous = value;
      value = next;
      for (const l of listeners) l(next, previous);
    },
  };
}

async function configFrom(yaml: string): Promise<RbacConfig> {
  return (await loadConfig(rbacConfigSchema, { text: yaml })).config;
}

function suite(
  name: string,
  open: () => Promise<{ db: Database; cleanup: () => Promise<void> }>,
  options = {},
) {
  void describe(`binding store on ${name}`, options, () => {
    let db: Database;
    let cleanup: () => Promise<void>;
    before(async () => {
      ({ db, cleanup } = await open());
    });
    after(async () => {
      await db.close();
      await cleanup();
    });

    void it('stores, resolves, replaces and revokes bindings', async () => {
      const store = await createBindingStore({ db, clock });
      assert.equal(
        await store.grant('user:u1', { role: 'publisher', namespace: 'team-a' }, 'user:admin'),
        true,
      );
      assert.equal(
        await store.grant('user:u1', { role: 'publisher', namespace: 'team-a' }, 'user:admin'),
        false,
      );
      await store.grant('user:u1', { role: 'reader', namespace: '*' }, 'user:admin');
      assert.deepEqual(
        (await store.resolve(['user:u1'])).toSorted((a, b) => a.role.localeCompare(b.role)),
        [
          { role: 'publisher', namespace: 'team-a' },
          { role: 'reader', namespace: '*' },
        ],
      );
      assert.deepEqual(await store.resolve(['user:other']), []);
      await store.replace('user:u1', [{ role: 'consumer', namespace: 'b' }], 'user:admin');
      assert.deepEqual(await store.resolve(['user:u1']), [{ role: 'consumer', namespace: 'b' }]);
      assert.equal(await store.revoke('user:u1', { role: 'consumer', namespace: 'b' }), true);
      assert.equal(await store.revoke('user:u1', { role: 'consumer', namespace: 'b' }), false);
      assert.deepEqual(await store.resolve(['user:u1']), []);
      // Migrations are idempotent: a second store on the same database works.
      const again = await createBindingStore({ db, clock });
      assert.deepEqual(await again.list('user:none'), []);
    });

    void it('merges configuration bindings and swaps them on reload', async () => {
      const config = section(
        await configFrom('bindings:\n  - { subject: "user:alice", role: auditor, namespace: "*" }\n'),
      );
      const store = await createBindingStore({ db, clock, config });
      await store.grant('user:id-alice', { role: 'publisher', namespace: 'a' }, 'system');
      assert.deepEqual(await store.resolve(['user:id-alice', 'user:alice']), [
        { role: 'publisher', namespace: 'a' },
        { role: 'auditor', namespace: '*' },
      ]);
      config.push(
        await configFrom('bindings:\n  - { subject: "user:alice", role: reader, namespace: kv1 }\n'),
      );
      assert.deepEqual(await store.resolve(['user:alice']), [{ role: 'reader', namespace: 'kv1' }]);
      const listed = await store.list('user:alice');
      assert.deepEqual(listed, [
        { subject: 'user:alice', role: 'reader', namespace: 'kv1', source: 'config' },
      ]);
      store.close();
      config.push(await configFrom('bindings: []\n'));
      assert.deepEqual(
        await store.resolve(['user:alice']),
        [{ role: 'reader', namespace: 'kv1' }],
        'closed store ignores reloads',
      );
    });
  });
}

void describe('rbac bindings reload', () => {
  void it('swaps bindings from a reloaded file and keeps the last good ones on an invalid file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gatehouse-rbac-'));
    const file = join(dir, 'gatehouse.yaml');
    const db = await createSqliteDatabase({ file: ':memory:' });
    try {
      const schema = object({ rbac: rbacConfigSchema }, 'Test root');
      await writeFile(
        file,
        'rbac:\n  bindings:\n    - { subject: "user:alice", role: reader, namespace: kv1 }\n',
      );
      const store = await ConfigStore.open(schema, { file });
      const section: ConfigSection<RbacConfig> = {
        current: () => store.current.rbac,
        subscribe: (listener) => store.subscribe((next, previous) => listener(next.rbac, previous.rbac)),
      };
      const bindings = await createBindingStore({ db, clock, config: section });
      assert.deepEqual(await bindings.resolve(['user:alice']), [{ role: 'reader', namespace: 'kv1' }]);
      await writeFile(
        file,
        'rbac:\n  bindings:\n    - { subject: "user:alice", role: operator, namespace: kv1 }\n',
      );
      assert.equal((await store.reload()).ok, true);
      assert.deepEqual(await bindings.resolve(['user:alice']), [{ role: 'operator', namespace: 'kv1' }]);
      // An escalation attempt with an invalid document (no namespace) changes nothing.
      await writeFile(file, 'rbac:\n  bindings:\n    - { subject: "user:alice", role: admin }\n');
      const outcome = await store.reload();
      assert.equal(outcome.ok, false);
      assert.deepEqual(await bindings.resolve(['user:alice']), [{ role: 'operator', namespace: 'kv1' }]);
      bindings.close();
      store.close();
    } finally {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

void describe('rbac config', () => {
  void it('requires an explicit namespace and a known role', async () => {
    await assert.rejects(
      configFrom('bindings:\n  - { subject: "user:a", role: publisher }\n'),
      /bindings\[0\]\.namespace/,
    );
    await assert.rejects(
      configFrom('bindings:\n  - { subject: "user:a", role: root, namespace: "*" }\n'),
      /bindings\[0\]\.role/,
    );
    await assert.rejects(
      configFrom('bindings:\n  - { subject: "alice", role: admin, namespace: "*" }\n'),
      /bindings\[0\]\.subject/,
    );
    await assert.rejects(
      configFrom('bindings:\n  - { subject: "user:a", role: admin, namespace: "a b" }\n'),
      /namespace/,
    );
  });
});

suite('sqlite', async () => {
  const db = await createSqliteDatabase({ file: ':memory:' });
  return { db, cleanup: async () => undefined };
});

const pg = requirePostgres();
suite(
  'postgres',
  async () => {
    const schema = await isolatedPostgres(pg.need(), 'rbac');
    const db = createPostgresDatabase({ url: schema.url });
    return { db, cleanup: () => schema.drop() };
  },
  pg.options,
);
