import type { Clock } from '#core/clock';
import type { ConfigSection } from '#core/config';
import type { Database, Migration } from '#core/storage';
import type { RbacConfig, SubjectBinding } from './config.ts';
import type { RoleBinding } from './model.ts';
import { ROLES, type Role } from './model.ts';

/** A binding with its subject and where it came from. */
export interface StoredBinding extends RoleBinding {
  readonly subject: string;
  readonly source: 'database' | 'config';
  readonly createdAt?: number;
  readonly createdBy?: string;
}

/** Role bindings of subjects, from the database plus the dynamic `rbac.bindings` section. */
export interface BindingStore {
  /** Every binding of any of `subjects` (e.g. `user:<id>` and `user:<name>`), without duplicates. */
  resolve(subjects: readonly string[]): Promise<RoleBinding[]>;
  list(subject?: string): Promise<StoredBinding[]>;
  /** Adds a database binding; false when it already existed. */
  grant(subject: string, binding: RoleBinding, actor: string): Promise<boolean>;
  /** Removes a database binding; false when there was none (config bindings cannot be revoked here). */
  revoke(subject: string, binding: RoleBinding): Promise<boolean>;
  /** Replaces every database binding of a subject in one transaction. */
  replace(subject: string, bindings: readonly RoleBinding[], actor: string): Promise<void>;
  /** Swaps the configuration bindings atomically. */
  setConfigBindings(bindings: readonly SubjectBinding[]): void;
  close(): void;
}

interface BindingRow {
  subject: string;
  role: string;
  namespace: string;
  created_at: number;
  created_by: string;
}

interface Tables {
  rbac_bindings: BindingRow;
}

/** Forward-only migrations of core/rbac (module `core-rbac`). */
export const RBAC_MIGRATIONS: readonly Migration[] = [
  {
    id: '0001_bindings',
    async up(db) {
      await db.schema
        .createTable('rbac_bindings')
        .addColumn('subject', 'varchar(512)', (c) => c.notNull())
        .addColumn('role', 'varchar(32)', (c) => c.notNull())
        .addColumn('namespace', 'varchar(256)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('created_by', 'varchar(512)', (c) => c.notNull())
        .addPrimaryKeyConstraint('rbac_bindings_pk', ['subject', 'role', 'namespace'])
        .execute();
    },
  },
];

function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

function indexConfig(bindings: readonly SubjectBinding[]): ReadonlyMap<string, readonly RoleBinding[]> {
  const map = new Map<string, RoleBinding[]>();
  for (const b of bindings) {
    const list = map.get(b.subject) ?? [];
    list.push(Object.freeze({ role: b.role, namespace: b.namespace }));
    map.set(b.subject, list);
  }
  return map;
}

function dedupe(bindings: readonly RoleBinding[]): RoleBinding[] {
  const seen = new Map<string, RoleBinding>();
  for (const b of bindings) seen.set(`${b.role}\u0000${b.namespace}`, b);
  return [...seen.values()];
}

/**
 * Opens the binding store: applies its migrations and seeds the configuration bindings,
 * following reloads of `config` when one is given.
 */
export async function createBindingStore(options: {
  readonly db: Database;
  readonly clock: Clock;
  readonly config?: ConfigSection<RbacConfig>;
}): Promise<BindingStore> {
  const { db, clock } = options;
  await db.migrate({ module: 'core-rbac', migrations: RBAC_MIGRATIONS });
  const k = db.kysely<Tables>();
  let fromConfig = indexConfig(options.config?.current().bindings ?? []);
  const unsubscribe = options.config?.subscribe((next) => {
    fromConfig = indexConfig(next.bindings);
  });

  const rowsOf = async (subjects: readonly string[]) =>
    subjects.length === 0
      ? []
      : k.selectFrom('rbac_bindings').selectAll().where('subject', 'in', subjects).execute();

  return {
    async resolve(subjects) {
      const rows = await rowsOf(subjects);
      const snapshot = fromConfig;
      const out: RoleBinding[] = [];
      for (const row of rows) if (isRole(row.role)) out.push({ role: row.role, namespace: row.namespace });
      for (const s of subjects) out.push(...(snapshot.get(s) ?? []));
      return dedupe(out);
    },
    async list(subject) {
      let query = k
        .selectFrom('rbac_bindings')
        .selectAll()
        .orderBy('subject')
        .orderBy('role')
        .orderBy('namespace');
      if (subject !== undefined) query = query.where('subject', '=', subject);
      const rows = await query.execute();
      const out: StoredBinding[] = rows.flatMap((r) =>
        isRole(r.role)
          ? [
              {
                subject: r.subject,
                role: r.role,
                namespace: r.namespace,
                source: 'database' as const,
                createdAt: r.created_at,
                createdBy: r.created_by,
              },
            ]
          : [],
      );
      for (const [s, list] of fromConfig) {
        if (subject !== undefined && s !== subject) continue;
        for (const b of list) out.push({ subject: s, ...b, source: 'config' });
      }
      return out;
    },
    async grant(subject, binding, actor) {
      const result = await k
        .insertInto('rbac_bindings')
        .values({
          subject,
          role: binding.role,
          namespace: binding.namespace,
          created_at: clock.now(),
          created_by: actor,
        })
        .onConflict((oc) => oc.columns(['subject', 'role', 'namespace']).doNothing())
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0n) > 0;
    },
    async revoke(subject, binding) {
      const result = await k
        .deleteFrom('rbac_bindings')
        .where('subject', '=', subject)
        .where('role', '=', binding.role)
        .where('namespace', '=', binding.namespace)
        .executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
    async replace(subject, bindings, actor) {
      const now = clock.now();
      await db.transaction<void, Tables>(async (trx) => {
        await trx.deleteFrom('rbac_bindings').where('subject', '=', subject).execute();
        const unique = dedupe(bindings);
        if (unique.length === 0) return;
        await trx
          .insertInto('rbac_bindings')
          .values(
            unique.map((b) => ({
              subject,
              role: b.role,
              namespace: b.namespace,
              created_at: now,
              created_by: actor,
            })),
          )
          .execute();
      });
    },
    setConfigBindings(bindings) {
      fromConfig = indexConfig(bindings);
    },
    close() {
      unsubscribe?.();
    },
  };
}
