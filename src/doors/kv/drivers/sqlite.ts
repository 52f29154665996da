import { DatabaseSync, type SQLInputValue } from 'node:sqlite';
import type { Clock } from '#core/app';
import { getEach, pick, takePrefix, ttlOf, versionConflict, withDeadline } from './call.ts';
import type { CallOptions, KvDriver, KvEntry, ListOptions, SetItem, SetOptions } from './driver.ts';

export interface SqliteDriverOptions {
  /** Database file, or `:memory:`. */
  readonly path: string;
  readonly clock: Clock;
  /**
   * How long a call waits for a write lock held by another process (SQLite's busy timeout), the
   * driver's deadline: the wait is synchronous, so it cannot be cut short when the deadline ends.
   */
  readonly busyTimeoutMs?: number;
}

interface Row {
  key: string;
  value: Uint8Array;
  version: number;
  metadata: string;
  expires_at: number | null;
}

// TEXT compares with memcmp on UTF-8 (BINARY collation), so key order is byte order.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS kv_entries (
  ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, version INTEGER NOT NULL,
  metadata TEXT NOT NULL DEFAULT '', expires_at INTEGER, PRIMARY KEY (ns, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_entries_expiry ON kv_entries (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS kv_sequence (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
INSERT OR IGNORE INTO kv_sequence (id, value) VALUES (1, 0);
`;

const LIVE = '(expires_at IS NULL OR expires_at > ?)';

/**
 * The embedded default driver on node:sqlite. Its calls are synchronous and local; the only wait
 * is on a file lock held by another process, bounded by `busyTimeoutMs` (the driver's deadline).
 */
export function createSqliteDriver(options: SqliteDriverOptions): KvDriver & { sweep(): number } {
  const { clock } = options;
  const db = new DatabaseSync(options.path);
  const busyTimeoutMs = Math.max(0, Math.round(options.busyTimeoutMs ?? 2000));
  db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = ${busyTimeoutMs};`);
  db.exec(SCHEMA);
  const q = {
    get: db.prepare(
      `SELECT key, value, version, metadata, expires_at FROM kv_entries WHERE ns = ? AND key = ? AND ${LIVE}`,
    ),
    version: db.prepare(`SELECT version FROM kv_entries WHERE ns = ? AND key = ? AND ${LIVE}`),
    next: db.prepare('UPDATE kv_sequence SET value = value + 1 WHERE id = 1 RETURNING value'),
    put: db.prepare(
      'INSERT OR REPLACE INTO kv_entries (ns, key, value, version, metadata, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    del: db.prepare(`DELETE FROM kv_entries WHERE ns = ? AND key = ? AND ${LIVE}`),
    expire: db.prepare(`UPDATE kv_entries SET expires_at = ? WHERE ns = ? AND key = ? AND ${LIVE}`),
    list: db.prepare(
      `SELECT key FROM kv_entries WHERE ns = ? AND key >= ? AND key > ? AND ${LIVE} ORDER BY key LIMIT ?`,
    ),
    sweep: db.prepare('DELETE FROM kv_entries WHERE expires_at <= ?'),
  };
  const toEntry = (r: Row): KvEntry => ({
    key: r.key,
    value: r.value,
    version: Number(r.version),
    metadata: r.metadata,
    expiresAt: r.expires_at === null ? undefined : Number(r.expires_at),
  });
  const get = (ns: string, key: string) => {
    const r = q.get.get(ns, key, clock.now()) as Row | undefined;
    return r === undefined ? undefined : toEntry(r);
  };
  const tx = <T>(fn: () => T): T => {
    db.exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      db.exec('COMMIT');
      return out;
    } catch (error) {
      db.exec('ROLLBACK');
      throw error;
    }
  };
  const write = (ns: string, item: SetItem): number => {
    const { value: version } = q.next.get() as { value: number };
    const ttl = item.ttlMs ?? 0;
    const values: SQLInputValue[] = [ns, item.key, item.value, version, item.metadata ?? ''];
    q.put.run(...values, ttl === 0 ? null : clock.now() + ttl);
    return Number(version);
  };
  const run = <T>(op: string, o: CallOptions, fn: () => T) =>
    withDeadline('sqlite', op, o.signal, () => Promise.resolve().then(fn));

  return {
    kind: 'sqlite',
    get: (ns, key, o) => run('get', o, () => get(ns, key)),
    getMany: (ns, keys, o) => run('getMany', o, () => getEach(keys, o.maxBytes, (k) => get(ns, k))),
    set: (ns, key, value, o: SetOptions) =>
      run('set', o, () =>
        tx(() => {
          if (o.expectedVersion !== undefined) {
            const row = q.version.get(ns, key, clock.now()) as { version: number } | undefined;
            if (Number(row?.version ?? 0) !== o.expectedVersion)
              throw versionConflict(key, o.expectedVersion);
          }
          return write(ns, { key, value, ...pick(o) });
        }),
      ),
    setMany: (ns, items, o) => run('setMany', o, () => tx(() => items.map((item) => write(ns, item)))),
    delete: (ns, key, o) => run('delete', o, () => Number(q.del.run(ns, key, clock.now()).changes) > 0),
    exists: (ns, key, o) => run('exists', o, () => q.version.get(ns, key, clock.now()) !== undefined),
    expire: (ns, key, ttlMs, o) =>
      run('expire', o, () => Number(q.expire.run(clock.now() + ttlMs, ns, key, clock.now()).changes) > 0),
    ttl: (ns, key, o) => run('ttl', o, () => ttlOf(get(ns, key), clock.now())),
    persist: (ns, key, o) =>
      run('persist', o, () => Number(q.expire.run(null, ns, key, clock.now()).changes) > 0),
    list: (ns, prefix, o: ListOptions) =>
      run('list', o, () => {
        const rows = q.list.all(ns, prefix, o.after ?? '', clock.now(), o.limit + 1) as unknown as Row[];
        return takePrefix(
          rows.map((r) => r.key),
          prefix,
          o.limit,
        );
      }),
    ping: (o) => run('ping', o, () => void db.prepare('SELECT 1').get()),
    close: async () => {
      if (db.isOpen) db.close();
    },
    sweep: () => Number(q.sweep.run(clock.now()).changes),
  };
}
