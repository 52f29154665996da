import type { Clock } from '#core/app';
import { compareKeys, getEach, versionConflict, withDeadline } from './call.ts';
import type {
  CallOptions,
  KvDriver,
  KvEntry,
  ListOptions,
  ListPage,
  SetItem,
  SetOptions,
  TtlInfo,
} from './driver.ts';

/**
 * The in-process driver: for unit tests and single-node experiments. Expired keys are dropped
 * when touched and by `sweep`, so memory stays bounded by live keys plus what expired since.
 */
export function createMemoryDriver(options: { readonly clock: Clock }): KvDriver & { sweep(): number } {
  const { clock } = options;
  const spaces = new Map<string, Map<string, KvEntry>>();
  let sequence = 0;

  const space = (ns: string) => {
    let s = spaces.get(ns);
    if (s === undefined) spaces.set(ns, (s = new Map()));
    return s;
  };
  const live = (ns: string, key: string): KvEntry | undefined => {
    const s = spaces.get(ns);
    const e = s?.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt !== undefined && e.expiresAt <= clock.now()) {
      s?.delete(key);
      return undefined;
    }
    return e;
  };
  const expiry = (ttlMs: number | undefined) =>
    ttlMs === undefined || ttlMs === 0 ? undefined : clock.now() + ttlMs;
  const write = (ns: string, item: SetItem): number => {
    sequence += 1;
    space(ns).set(item.key, {
      key: item.key,
      value: Uint8Array.from(item.value),
      version: sequence,
      metadata: item.metadata ?? '',
      expiresAt: expiry(item.ttlMs),
    });
    return sequence;
  };
  const run = <T>(op: string, o: CallOptions, fn: () => T) =>
    withDeadline('memory', op, o.signal, () => Promise.resolve().then(fn));

  return {
    kind: 'memory',
    get: (ns, key, o) => run('get', o, () => live(ns, key)),
    getMany: (ns, keys, o) => run('getMany', o, () => getEach(keys, o.maxBytes, (k) => live(ns, k))),
    set: (ns, key, value, o: SetOptions) =>
      run('set', o, () => {
        if (o.expectedVersion !== undefined) {
          const current = live(ns, key)?.version ?? 0;
          if (current !== o.expectedVersion) throw versionConflict(key, o.expectedVersion);
        }
        return write(ns, {
          key,
          value,
          ...(o.ttlMs === undefined ? {} : { ttlMs: o.ttlMs }),
          ...(o.metadata === undefined ? {} : { metadata: o.metadata }),
        });
      }),
    setMany: (ns, items, o) => run('setMany', o, () => items.map((item) => write(ns, item))),
    delete: (ns, key, o) =>
      run('delete', o, () => live(ns, key) !== undefined && (spaces.get(ns)?.delete(key) ?? false)),
    exists: (ns, key, o) => run('exists', o, () => live(ns, key) !== undefined),
    expire: (ns, key, ttlMs, o) =>
      run('expire', o, () => {
        const e = live(ns, key);
        if (e === undefined) return false;
        space(ns).set(key, { ...e, expiresAt: expiry(ttlMs) });
        return true;
      }),
    ttl: (ns, key, o) =>
      run('ttl', o, (): TtlInfo | undefined => {
        const e = live(ns, key);
        if (e === undefined) return undefined;
        if (e.expiresAt === undefined) return { expires: false, remainingMs: 0 };
        return { expires: true, remainingMs: e.expiresAt - clock.now() };
      }),
    persist: (ns, key, o) =>
      run('persist', o, () => {
        const e = live(ns, key);
        if (e === undefined) return false;
        space(ns).set(key, { ...e, expiresAt: undefined });
        return true;
      }),
    list: (ns, prefix, o: ListOptions) =>
      run('list', o, (): ListPage => {
        const keys = [...(spaces.get(ns)?.keys() ?? [])]
          .filter((k) => k.startsWith(prefix) && (o.after === undefined || compareKeys(k, o.after) > 0))
          .filter((k) => live(ns, k) !== undefined)
          .toSorted(compareKeys);
        return { keys: keys.slice(0, o.limit), more: keys.length > o.limit };
      }),
    ping: (o) => run('ping', o, () => undefined),
    close: async () => {
      spaces.clear();
    },
    sweep: () => {
      let removed = 0;
      const now = clock.now();
      for (const s of spaces.values()) {
        for (const [k, e] of s) {
          if (e.expiresAt !== undefined && e.expiresAt <= now && s.delete(k)) removed += 1;
        }
      }
      return removed;
    },
  };
}
