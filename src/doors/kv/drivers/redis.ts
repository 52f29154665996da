import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Socket as NetStream } from 'node:net';
import type { Clock } from '#core/app';
import { answerTooLarge, compareKeys, pick, versionConflict, withDeadline } from './call.ts';
import type { CallOptions, KvDriver, KvEntry, ListOptions, SetItem } from './driver.ts';
import { DELETE, GET, LIST, PERSIST, SET, SET_MANY, SWEEP } from './redis-scripts.ts';

export interface RedisDriverOptions {
  readonly url: string;
  readonly clock: Clock;
  readonly timeoutMs: number;
  /** Prefix of every Redis key, so several deployments or tests can share a server. */
  readonly keyPrefix?: string;
  /** `CLIENT SETNAME` of the connection, so operators can find it in `CLIENT LIST`. */
  readonly connectionName?: string;
}

type Reply = Buffer | number | null | Reply[];

/**
 * Redis driver (ioredis). Each entry is a hash {v, ver, m} with the TTL as the key's own
 * expiry; a per-namespace counter gives versions and a sorted set indexes keys for ordered
 * prefix listing. Lua scripts keep the three consistent and implement compare-and-set.
 */
export function createRedisDriver(
  options: RedisDriverOptions,
): KvDriver & { readonly client: Redis; sweep(): Promise<number> } {
  const { clock } = options;
  const base = options.keyPrefix ?? 'gatehouse:kv:';
  const client = new Redis(options.url, {
    lazyConnect: true,
    connectionName: options.connectionName ?? 'gatehouse-kv',
    connectTimeout: options.timeoutMs,
    commandTimeout: options.timeoutMs,
    // Fail fast while disconnected instead of queueing, and never replay a write whose outcome
    // is unknown after a reconnect: the caller was already told UNAVAILABLE.
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
  });
  client.on('error', () => undefined);
  let connecting: Promise<void> | undefined;
  const ready = async () => {
    if (client.status === 'ready') return;
    if (client.status === 'wait' || client.status === 'end') {
      connecting ??= client.connect().finally(() => {
        connecting = undefined;
      });
    }
    if (connecting !== undefined) await connecting;
  };
  // Concurrent calls issue their commands in the same event-loop turn; corking the socket until
  // the turn ends sends them in one write system call instead of one each (the writes were most
  // of the driver's CPU time). Order, and so reply matching, is unchanged.
  let corked: NetStream | undefined;
  const uncork = () => {
    corked?.uncork();
    corked = undefined;
  };
  const coalesce = () => {
    if (corked !== undefined) return;
    corked = client.stream;
    corked.cork();
    setImmediate(uncork);
  };
  const tag = (ns: string) => `${base}{${ns}}:`;
  const entryKey = (ns: string, key: string) => `${tag(ns)}k:${key}`;
  const nsKeys = (ns: string, key: string) => [entryKey(ns, key), `${tag(ns)}idx`, `${tag(ns)}seq`];
  const shas = new Map<string, string>();
  const evalScript = async (lua: string, keys: readonly string[], args: readonly (string | Uint8Array)[]) => {
    await ready();
    let sha = shas.get(lua);
    if (sha === undefined) shas.set(lua, (sha = createHash('sha1').update(lua).digest('hex')));
    const argv = [
      ...keys,
      ...args.map((a) => (typeof a === 'string' ? a : Buffer.from(a.buffer, a.byteOffset, a.length))),
    ];
    coalesce();
    try {
      return (await client.callBuffer('EVALSHA', [sha, keys.length, ...argv])) as Reply;
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return (await client.callBuffer('EVAL', [lua, keys.length, ...argv])) as Reply;
    }
  };
  const set = async (ns: string, item: SetItem, expected?: number) => {
    const version = await evalScript(SET, nsKeys(ns, item.key), [
      item.value,
      item.metadata ?? '',
      String(item.ttlMs ?? 0),
      expected === undefined ? '' : String(expected),
      item.key,
    ]);
    if (version === -1) throw versionConflict(item.key, expected ?? 0);
    return Number(version);
  };
  const getMany = async (ns: string, keys: readonly string[], maxBytes?: number) => {
    const now = clock.now();
    const reply = await evalScript(
      GET,
      keys.map((k) => entryKey(ns, k)),
      maxBytes === undefined ? [] : [String(maxBytes)],
    );
    if (!Array.isArray(reply)) throw answerTooLarge(maxBytes ?? 0);
    return keys.map((key, i): KvEntry | undefined => {
      const at = i * 4;
      const version = reply[at + 1];
      if (!Buffer.isBuffer(version)) return undefined;
      const metadata = reply[at + 2];
      const pttl = Number(reply[at + 3]);
      return {
        key,
        value: (reply[at] as Buffer | null) ?? Buffer.alloc(0),
        version: Number(version.toString('latin1')),
        metadata: Buffer.isBuffer(metadata) ? metadata.toString('utf8') : '',
        expiresAt: pttl > 0 ? now + pttl : undefined,
      };
    });
  };
  const run = <T>(op: string, o: CallOptions, fn: () => Promise<T>) =>
    withDeadline('redis', op, o.signal, fn);
  const plain = async <T>(fn: () => Promise<T>) => {
    await ready();
    coalesce();
    return fn();
  };

  return {
    kind: 'redis',
    client,
    get: (ns, key, o) => run('get', o, async () => (await getMany(ns, [key]))[0]),
    getMany: (ns, keys, o) => run('getMany', o, () => getMany(ns, keys, o.maxBytes)),
    set: (ns, key, value, o) => run('set', o, () => set(ns, { key, value, ...pick(o) }, o.expectedVersion)),
    setMany: (ns, items, o) =>
      run('setMany', o, async () => {
        // One script for the whole batch: one round trip, applied in order, isolated from other
        // clients' commands (Redis does not roll a script back if it fails midway).
        const keys = [`${tag(ns)}idx`, `${tag(ns)}seq`];
        const args: (string | Uint8Array)[] = [];
        for (const item of items) {
          keys.push(entryKey(ns, item.key));
          args.push(item.value, item.metadata ?? '', String(item.ttlMs ?? 0), item.key);
        }
        const versions = (await evalScript(SET_MANY, keys, args)) as number[];
        return versions.map(Number);
      }),
    delete: (ns, key, o) =>
      run('delete', o, async () => Number(await evalScript(DELETE, nsKeys(ns, key).slice(0, 2), [key])) > 0),
    exists: (ns, key, o) =>
      run('exists', o, () => plain(async () => (await client.exists(entryKey(ns, key))) > 0)),
    expire: (ns, key, ttlMs, o) =>
      run('expire', o, () => plain(async () => (await client.pexpire(entryKey(ns, key), ttlMs)) === 1)),
    ttl: (ns, key, o) =>
      run('ttl', o, () =>
        plain(async () => {
          const pttl = await client.pttl(entryKey(ns, key));
          if (pttl === -2) return undefined;
          return pttl === -1
            ? { expires: false, remainingMs: 0 }
            : { expires: true, remainingMs: Math.max(1, pttl) };
        }),
      ),
    persist: (ns, key, o) =>
      run('persist', o, async () => (await evalScript(PERSIST, [entryKey(ns, key)], [])) === 1),
    list: (ns, prefix, o: ListOptions) =>
      run('list', o, async () => {
        const p = Buffer.from(prefix);
        const start =
          o.after !== undefined && compareKeys(o.after, prefix) >= 0
            ? `(${o.after}`
            : Buffer.concat([Buffer.from('['), p]);
        // No UTF-8 string contains the byte 0xFF, so prefix + 0xFF bounds every key with the prefix.
        const end = Buffer.concat([Buffer.from('['), p, Buffer.from([0xff])]);
        const [found, last, ended] = (await evalScript(
          LIST,
          [`${tag(ns)}idx`],
          [start, end, String(o.limit + 1), `${tag(ns)}k:`],
        )) as [Buffer[], Buffer | null, number];
        const keys = found.map((b) => b.toString('utf8'));
        if (keys.length > o.limit) return { keys: keys.slice(0, o.limit), more: true };
        // The script's walk was cut short by expired members: the page may be short, even
        // empty, and the next one starts after the last member it examined.
        if (ended !== 1 && last !== null) return { keys, more: true, resumeAfter: last.toString('utf8') };
        return { keys, more: false };
      }),
    ping: (o) => run('ping', o, () => plain(async () => void (await client.ping()))),
    close: async () => {
      client.disconnect();
    },
    sweep: async () => {
      // Redis expires the entry hashes itself; their index members are removed here (and by
      // listings), so namespaces that are never listed do not grow their index forever.
      await ready();
      let removed = 0;
      const pattern = `${base.replace(/[*?[\]\\]/g, '\\$&')}{*}:idx`;
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 200);
        cursor = next;
        for (const idx of keys) {
          const entries = `${idx.slice(0, -'idx'.length)}k:`;
          let start: string | Buffer = '-';
          for (let round = 0; round < 10_000; round += 1) {
            const [last, n] = (await evalScript(SWEEP, [idx], [start, '500', entries])) as [
              Buffer | null,
              number,
            ];
            removed += Number(n);
            if (last === null) break;
            start = Buffer.concat([Buffer.from('('), last]);
          }
        }
      } while (cursor !== '0');
      return removed;
    },
  };
}
