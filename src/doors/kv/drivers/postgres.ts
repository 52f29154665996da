import pg from 'pg';
import type { Clock } from '#core/app';
import { answerTooLarge, pick, takePrefix, ttlOf, versionConflict, withDeadline } from './call.ts';
import type { CallOptions, KvDriver, KvEntry, ListOptions, SetItem, SetOptions } from './driver.ts';

export interface PostgresDriverOptions {
  readonly url: string;
  readonly clock: Clock;
  /** Upper bound of one query; a pooled connection is released after it. */
  readonly timeoutMs: number;
  readonly poolSize?: number;
  /** How often expired rows are deleted; 0 disables the sweeper (tests call `sweep`). */
  readonly sweepIntervalMs?: number;
  /** Table name prefix, so tests can use their own tables. */
  readonly table?: string;
  /** `application_name` of the pool's sessions, so operators can find them in `pg_stat_activity`. */
  readonly applicationName?: string;
}

interface Row {
  key: string;
  value: Buffer;
  version: string;
  metadata: string;
  expires_at: string | null;
}

/**
 * PostgreSQL driver. Expiry is an `expires_at` column compared on every read, so an expired
 * row is never returned even before the sweeper deletes it. Keys use the "C" collation so
 * ordering and prefix ranges are UTF-8 byte order.
 */
export function createPostgresDriver(
  options: PostgresDriverOptions,
): KvDriver & { sweep(): Promise<number> } {
  const { clock } = options;
  const t = options.table ?? 'gatehouse_kv_entries';
  const seq = `${t}_version`;
  const pool = new pg.Pool({
    connectionString: options.url,
    application_name: options.applicationName ?? 'gatehouse-kv',
    max: options.poolSize ?? 20,
    connectionTimeoutMillis: options.timeoutMs,
    query_timeout: options.timeoutMs,
    idleTimeoutMillis: 30_000,
  });
  // A dead server surfaces as an 'error' on idle clients; the next query reports it.
  pool.on('error', () => undefined);
  const live = 'AND (expires_at IS NULL OR expires_at > $3)';
  const cols = 'key, value, version, metadata, expires_at';
  let ready: Promise<void> | undefined;
  const migrate = async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [t]);
      await client.query(`CREATE SEQUENCE IF NOT EXISTS ${seq}`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${t} (
        ns text NOT NULL, key text COLLATE "C" NOT NULL, value bytea NOT NULL, version bigint NOT NULL,
        metadata text NOT NULL DEFAULT '', expires_at bigint, PRIMARY KEY (ns, key))`);
      await client.query(
        `CREATE INDEX IF NOT EXISTS ${t}_expiry ON ${t} (expires_at) WHERE expires_at IS NOT NULL`,
      );
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  };
  const query = async (sql: string, params: unknown[], client: pg.Pool | pg.PoolClient = pool) => {
    ready ??= migrate().catch((error: unknown) => {
      ready = undefined;
      throw error;
    });
    await ready;
    return (await client.query<Row>(sql, params)).rows;
  };
  const toEntry = (r: Row): KvEntry => ({
    key: r.key,
    value: r.value,
    version: Number(r.version),
    metadata: r.metadata,
    expiresAt: r.expires_at === null ? undefined : Number(r.expires_at),
  });
  const expiry = (ttlMs: number | undefined) =>
    ttlMs === undefined || ttlMs === 0 ? null : clock.now() + ttlMs;
  const upsert = `INSERT INTO ${t} (ns, key, value, version, metadata, expires_at)
    VALUES ($1, $2, $4, nextval('${seq}'), $5, $6)
    ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version,
      metadata = EXCLUDED.metadata, expires_at = EXCLUDED.expires_at`;
  const write = async (ns: string, item: SetItem, client?: pg.PoolClient) => {
    const params = [ns, item.key, clock.now(), item.value, item.metadata ?? '', expiry(item.ttlMs)];
    // A plain upsert does not need $3 (now); the always-true condition gives it a type.
    const rows = await query(`${upsert} WHERE $3::bigint IS NOT NULL RETURNING version`, params, client);
    return Number(rows[0]?.version);
  };
  const cas = async (ns: string, key: string, value: Uint8Array, o: SetOptions, expected: number) => {
    const params = [ns, key, clock.now(), value, o.metadata ?? '', expiry(o.ttlMs)];
    // Version 0 inserts, or replaces a row that is present but already expired.
    const sql =
      expected === 0
        ? `${upsert} WHERE ${t}.expires_at IS NOT NULL AND ${t}.expires_at <= $3 RETURNING version`
        : `UPDATE ${t} SET value = $4, version = nextval('${seq}'), metadata = $5, expires_at = $6
           WHERE ns = $1 AND key = $2 AND version = $7 ${live} RETURNING version`;
    const rows = await query(sql, expected === 0 ? params : [...params, expected]);
    if (rows[0] === undefined) throw versionConflict(key, expected);
    return Number(rows[0].version);
  };
  const run = <T>(op: string, o: CallOptions, fn: () => Promise<T>) =>
    withDeadline('postgres', op, o.signal, fn);
  const get = async (ns: string, keys: readonly string[]) => {
    const rows = await query(`SELECT ${cols} FROM ${t} WHERE ns = $1 AND key = ANY($2::text[]) ${live}`, [
      ns,
      keys,
      clock.now(),
    ]);
    const byKey = new Map(rows.map((r) => [r.key, toEntry(r)]));
    return keys.map((k) => byKey.get(k));
  };
  /**
   * The values' total first, in the same statement (one snapshot): the values are only read when
   * they fit in `maxBytes` (octet_length reads a stored value's size, not the value).
   */
  const getWithin = async (ns: string, keys: readonly string[], maxBytes: number) => {
    const found = `FROM ${t} WHERE ns = $1 AND key = ANY($2::text[]) ${live}`;
    const rows = (await query(
      `SELECT s.total, r.* FROM (SELECT coalesce(sum(octet_length(value)), 0) AS total ${found}) s
       LEFT JOIN LATERAL (SELECT ${cols} ${found} AND s.total <= $4) r ON true`,
      [ns, keys, clock.now(), maxBytes],
    )) as (Row & { total: string })[];
    if (Number(rows[0]?.total ?? 0) > maxBytes) throw answerTooLarge(maxBytes);
    const byKey = new Map(rows.filter((r) => r.key !== null).map((r) => [r.key, toEntry(r)]));
    return keys.map((k) => byKey.get(k));
  };
  const setExpiry = async (ns: string, key: string, at: number | null) =>
    (
      await query(`UPDATE ${t} SET expires_at = $4 WHERE ns = $1 AND key = $2 ${live} RETURNING version`, [
        ns,
        key,
        clock.now(),
        at,
      ])
    ).length > 0;
  const sweep = async () =>
    (
      await query(
        // SKIP LOCKED: rows a batch holds are left for the next sweep, so the sweeper (which
        // meets rows in physical order) never waits on a writer and cannot deadlock with one.
        `DELETE FROM ${t} WHERE ctid IN (SELECT ctid FROM ${t} WHERE expires_at <= $1 LIMIT 10000 FOR UPDATE SKIP LOCKED) RETURNING version`,
        [clock.now()],
      )
    ).length;
  const timer =
    (options.sweepIntervalMs ?? 0) > 0
      ? setInterval(() => void sweep().catch(() => undefined), options.sweepIntervalMs).unref()
      : undefined;

  return {
    kind: 'postgres',
    get: (ns, key, o) => run('get', o, async () => (await get(ns, [key]))[0]),
    getMany: (ns, keys, o) => run('getMany', o, () => getWithin(ns, keys, o.maxBytes)),
    set: (ns, key, value, o) =>
      run('set', o, () =>
        o.expectedVersion === undefined
          ? write(ns, { key, value, ...pick(o) })
          : cas(ns, key, value, o, o.expectedVersion),
      ),
    setMany: (ns, items, o) =>
      run('setMany', o, async () => {
        await query('SELECT 1', []);
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          // Two batches writing the same keys in different orders would deadlock on the rows:
          // each first takes the transaction locks of its keys' buckets, all in one order. One
          // of 64 buckets per key (not one lock per key) keeps a batch at 64 entries of the
          // server's shared lock table, which a thousand keys per batch would exhaust.
          await client.query(
            `SELECT pg_advisory_xact_lock(hashtext($1), b) FROM (SELECT DISTINCT (hashtextextended(k, 0) & 63)::int AS b
               FROM unnest($2::text[]) AS k ORDER BY b) AS buckets`,
            [`${t}:${ns}`, items.map((i) => i.key)],
          );
          const versions: number[] = [];
          for (const item of items) versions.push(await write(ns, item, client));
          await client.query('COMMIT');
          return versions;
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw error;
        } finally {
          client.release();
        }
      }),
    delete: (ns, key, o) =>
      run(
        'delete',
        o,
        async () =>
          (
            await query(`DELETE FROM ${t} WHERE ns = $1 AND key = $2 ${live} RETURNING version`, [
              ns,
              key,
              clock.now(),
            ])
          ).length > 0,
      ),
    exists: (ns, key, o) => run('exists', o, async () => (await get(ns, [key]))[0] !== undefined),
    expire: (ns, key, ttlMs, o) => run('expire', o, () => setExpiry(ns, key, clock.now() + ttlMs)),
    ttl: (ns, key, o) => run('ttl', o, async () => ttlOf((await get(ns, [key]))[0], clock.now())),
    persist: (ns, key, o) => run('persist', o, () => setExpiry(ns, key, null)),
    list: (ns, prefix, o: ListOptions) =>
      run('list', o, async () => {
        const rows = await query(
          `SELECT key FROM ${t} WHERE ns = $1 AND key >= $2 AND key > $4 ${live} ORDER BY key LIMIT $5`,
          [ns, prefix, clock.now(), o.after ?? '', o.limit + 1],
        );
        return takePrefix(
          rows.map((r) => r.key),
          prefix,
          o.limit,
        );
      }),
    ping: (o) => run('ping', o, async () => void (await query('SELECT 1', []))),
    close: async () => {
      if (timer !== undefined) clearInterval(timer);
      await pool.end();
    },
    sweep,
  };
}
