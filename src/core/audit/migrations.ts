import { sql } from 'kysely';
import type { MigrationSet } from '#core/storage';
import { GENESIS_HASH } from './chain.ts';

/** The audit tables: the events and a one-row chain head that serialises appends across replicas. */
export const AUDIT_MIGRATIONS: MigrationSet = {
  module: 'audit',
  migrations: [
    {
      id: '0001_audit_events',
      async up(db) {
        await db.schema
          .createTable('audit_events')
          .addColumn('seq', 'bigint', (c) => c.primaryKey())
          .addColumn('time', 'text', (c) => c.notNull())
          .addColumn('actor', 'text', (c) => c.notNull())
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('resource', 'text', (c) => c.notNull())
          .addColumn('decision', 'text', (c) => c.notNull())
          .addColumn('reason', 'text')
          .addColumn('request_id', 'text')
          .addColumn('client_ip', 'text')
          .addColumn('details', 'text')
          .addColumn('prev_hash', 'text', (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('audit_events_actor')
          .on('audit_events')
          .columns(['actor', 'seq'])
          .execute();
        await db.schema
          .createIndex('audit_events_action')
          .on('audit_events')
          .columns(['action', 'seq'])
          .execute();
        await db.schema.createIndex('audit_events_time').on('audit_events').column('time').execute();
        await db.schema
          .createTable('audit_head')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('seq', 'bigint', (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull())
          .execute();
        // The head row exists from the start, so replicas only ever lock and update it.
        await sql`insert into audit_head (id, seq, hash) values (1, 0, ${GENESIS_HASH})`.execute(db);
      },
    },
    {
      id: '0002_audit_append_only',
      // The application never changes or deletes an event; the database refuses it too, so a
      // bug or a stray UPDATE cannot rewrite history (tampering then needs DDL, which verify detects).
      async up(db, dialect) {
        if (dialect === 'postgres') {
          await sql`create function audit_events_append_only() returns trigger language plpgsql as $$
            begin raise exception 'audit events are append-only'; end $$`.execute(db);
          await sql`create trigger audit_events_no_change before update or delete on audit_events
            for each row execute function audit_events_append_only()`.execute(db);
          return;
        }
        for (const operation of ['update', 'delete']) {
          await sql
            .raw(
              `create trigger audit_events_no_${operation} before ${operation} on audit_events ` +
                `begin select raise(abort, 'audit events are append-only'); end`,
            )
            .execute(db);
        }
      },
    },
  ],
};
