import { randomBytes } from 'node:crypto';
import { jetstream } from '@nats-io/jetstream';
import { type KV, type KvEntry as NatsEntry, Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Clock } from '#core/app';
import { GatewayError } from '#core/errors';
import { compareKeys, pick, ttlOf, versionConflict, withDeadline } from './call.ts';
import type { CallOptions, KvDriver, KvEntry, ListOptions, SetItem, SetOptions } from './driver.ts';
import { decodeEnvelope, encodeEnvelope, type Envelope } from './envelope.ts';

export interface NatsDriverOptions {
  readonly url: string;
  readonly clock: Clock;
  readonly timeoutMs: number;
  /** JetStream KV bucket holding every namespace of this driver. */
  readonly bucket?: string;
}

interface Head {
  readonly revision: number;
  readonly envelope: Envelope;
}

const hex = (s: string) => Buffer.from(s, 'utf8').toString('hex');
const unhex = (s: string) => Buffer.from(s, 'hex').toString('utf8');
// Room for the envelope header inside one message below the server's max_payload.
const HEADROOM = 64 * 1024;

/**
 * NATS JetStream KV driver. One bucket (history 1) holds every namespace: entries at
 * `h.<namespace>.<hex key>` (hex keeps byte order and fits NATS key characters), values above
 * the server's max payload as chunks at `c.<namespace>.<id>.<n>` written before the head that
 * names them. The server (2.9) has no per-key TTL, so expiry lives in the envelope and is
 * checked on every read; a sweeper purges expired heads. Versions are stream revisions, and
 * compare-and-set is the server's own last-revision check.
 */
export function createNatsDriver(
  options: NatsDriverOptions,
): KvDriver & { sweep(): Promise<number>; destroy(): Promise<void> } {
  const { clock } = options;
  const bucket = options.bucket ?? 'gatehouse_kv';
  let opened: Promise<{ nc: NatsConnection; kv: KV; chunkSize: number }> | undefined;
  const open = () => {
    opened ??= (async () => {
      const nc = await connect({
        servers: options.url,
        timeout: options.timeoutMs,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
      });
      const kv = await new Kvm(jetstream(nc, { timeout: options.timeoutMs })).create(bucket, { history: 1 });
      return { nc, kv, chunkSize: Math.max(1024, nc.info?.max_payload ?? 1024 * 1024) - HEADROOM };
    })().catch((error: unknown) => {
      opened = undefined;
      throw error;
    });
    return opened;
  };
  const headKey = (ns: string, key: string) => `h.${ns}.${hex(key)}`;
  const chunkKey = (ns: string, id: string, n: number) => `c.${ns}.${id}.${n}`;
  const isLive = (e: Envelope) => e.expiresAt === undefined || e.expiresAt > clock.now();

  const readHead = async (kv: KV, ns: string, key: string): Promise<Head | undefined> => {
    const raw: NatsEntry | null = await kv.get(headKey(ns, key));
    if (raw === null || raw.operation !== 'PUT') return undefined;
    const envelope = decodeEnvelope(raw.value);
    if (envelope === undefined) throw corrupt(key);
    return { revision: raw.revision, envelope };
  };
  const readValue = async (kv: KV, ns: string, key: string, e: Envelope) => {
    if (e.chunks === undefined) return e.value;
    const parts = await Promise.all(
      Array.from({ length: e.chunks.count }, (_, n) => kv.get(chunkKey(ns, e.chunks?.id ?? '', n))),
    );
    if (parts.some((p) => p === null || p.operation !== 'PUT')) return undefined;
    const value = Buffer.concat(parts.map((p) => p?.value ?? new Uint8Array(0)));
    if (value.length !== e.chunks.size) throw corrupt(key);
    return value;
  };
  const get = async (ns: string, key: string): Promise<KvEntry | undefined> => {
    const { kv } = await open();
    // A concurrent overwrite may purge the chunks between reading the head and the chunks; the
    // second read then sees the new head.
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const head = await readHead(kv, ns, key);
      if (head === undefined || !isLive(head.envelope)) return undefined;
      const value = await readValue(kv, ns, key, head.envelope);
      if (value !== undefined) {
        return {
          key,
          value,
          version: head.revision,
          metadata: head.envelope.metadata ?? '',
          expiresAt: head.envelope.expiresAt,
        };
      }
    }
    throw corrupt(key);
  };
  const purgeChunks = async (kv: KV, ns: string, e: Envelope | undefined) => {
    if (e?.chunks === undefined) return;
    const { id, count } = e.chunks;
    await Promise.all(
      Array.from({ length: count }, (_, n) => kv.purge(chunkKey(ns, id, n)).catch(() => undefined)),
    );
  };
  const write = async (ns: string, item: SetItem, expected?: number) => {
    const { kv, chunkSize } = await open();
    const prev = await readHead(kv, ns, item.key).catch(() => undefined);
    const prevLive = prev !== undefined && isLive(prev.envelope) ? prev.revision : 0;
    if (expected !== undefined && prevLive !== expected) throw versionConflict(item.key, expected);
    const base = {
      ...(item.ttlMs === undefined || item.ttlMs === 0 ? {} : { expiresAt: clock.now() + item.ttlMs }),
      ...(item.metadata === undefined ? {} : { metadata: item.metadata }),
    };
    let envelope: Envelope = { ...base, value: item.value };
    if (item.value.length > chunkSize) {
      const id = randomBytes(16).toString('hex');
      const count = Math.ceil(item.value.length / chunkSize);
      for (let n = 0; n < count; n += 1) {
        await kv.put(chunkKey(ns, id, n), item.value.subarray(n * chunkSize, (n + 1) * chunkSize));
      }
      envelope = { ...base, chunks: { id, count, size: item.value.length }, value: new Uint8Array(0) };
    }
    let revision: number;
    try {
      if (expected === undefined) revision = await kv.put(headKey(ns, item.key), encodeEnvelope(envelope));
      else if (prev === undefined)
        revision = await kv.create(headKey(ns, item.key), encodeEnvelope(envelope));
      else revision = await kv.update(headKey(ns, item.key), encodeEnvelope(envelope), prev.revision);
    } catch (error) {
      await purgeChunks(kv, ns, envelope);
      if (expected !== undefined && isWrongSequence(error)) throw versionConflict(item.key, expected);
      throw error;
    }
    await purgeChunks(kv, ns, prev?.envelope);
    return revision;
  };
  /** Rewrites the expiry of a live head with the server's revision check, retrying on races. */
  const setExpiry = async (ns: string, key: string, expiresAt: number | undefined) => {
    const { kv } = await open();
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const head = await readHead(kv, ns, key);
      if (head === undefined || !isLive(head.envelope)) return false;
      const { expiresAt: _old, ...rest } = head.envelope;
      const next = expiresAt === undefined ? rest : { ...rest, expiresAt };
      try {
        await kv.update(headKey(ns, key), encodeEnvelope(next), head.revision);
        return true;
      } catch (error) {
        if (!isWrongSequence(error)) throw error;
      }
    }
    throw new GatewayError('GW_ERR_KV_VERSION_CONFLICT', {
      message: `Key "${key.slice(0, 64)}" kept changing`,
    });
  };
  const remove = async (ns: string, key: string) => {
    const { kv } = await open();
    const head = await readHead(kv, ns, key).catch(() => undefined);
    if (head === undefined) return false;
    await kv.purge(headKey(ns, key));
    await purgeChunks(kv, ns, head.envelope);
    return isLive(head.envelope);
  };
  const keysOf = async (filter: string) => {
    const { kv } = await open();
    const out: string[] = [];
    for await (const k of await kv.keys(filter)) out.push(k);
    return out;
  };
  const run = <T>(op: string, o: CallOptions, fn: () => Promise<T>) => withDeadline('nats', op, o.signal, fn);

  return {
    kind: 'nats',
    get: (ns, key, o) => run('get', o, () => get(ns, key)),
    getMany: (ns, keys, o) => run('getMany', o, () => Promise.all(keys.map((k) => get(ns, k)))),
    set: (ns, key, value, o: SetOptions) =>
      run('set', o, () => write(ns, { key, value, ...pick(o) }, o.expectedVersion)),
    setMany: (ns, items, o) =>
      run('setMany', o, async () => {
        const versions: number[] = [];
        for (const item of items) versions.push(await write(ns, item));
        return versions;
      }),
    delete: (ns, key, o) => run('delete', o, () => remove(ns, key)),
    exists: (ns, key, o) =>
      run('exists', o, async () => {
        const head = await readHead((await open()).kv, ns, key);
        return head !== undefined && isLive(head.envelope);
      }),
    expire: (ns, key, ttlMs, o) => run('expire', o, () => setExpiry(ns, key, clock.now() + ttlMs)),
    ttl: (ns, key, o) =>
      run('ttl', o, async () => {
        const head = await readHead((await open()).kv, ns, key);
        if (head === undefined || !isLive(head.envelope)) return undefined;
        return ttlOf(
          { key, value: head.envelope.value, version: 0, metadata: '', expiresAt: head.envelope.expiresAt },
          clock.now(),
        );
      }),
    persist: (ns, key, o) => run('persist', o, () => setExpiry(ns, key, undefined)),
    list: (ns, prefix, o: ListOptions) =>
      run('list', o, async () => {
        // NATS filters by subject tokens, not by string prefix, so the namespace's keys are
        // listed and filtered here; fine for the sizes NATS KV buckets are meant for.
        const p = hex(prefix);
        const after = o.after === undefined ? '' : hex(o.after);
        const candidates = (await keysOf(`h.${ns}.>`))
          .map((k) => k.slice(ns.length + 3))
          .filter((h) => h.startsWith(p) && h > after)
          .toSorted();
        const { kv } = await open();
        const keys: string[] = [];
        for (const h of candidates) {
          if (keys.length > o.limit) break;
          const head = await readHead(kv, ns, unhex(h)).catch(() => undefined);
          if (head !== undefined && isLive(head.envelope)) keys.push(unhex(h));
        }
        keys.sort(compareKeys);
        return { keys: keys.slice(0, o.limit), more: keys.length > o.limit };
      }),
    ping: (o) =>
      run('ping', o, async () => {
        await (await open()).nc.flush();
      }),
    close: async () => {
      const current = opened;
      opened = undefined;
      if (current !== undefined) await (await current.catch(() => undefined))?.nc.close();
    },
    /** Deletes the whole bucket (tests). */
    destroy: async () => {
      await (await open()).kv.destroy();
    },
    sweep: async () => {
      let removed = 0;
      const { kv } = await open();
      for (const k of await keysOf('h.>')) {
        const [, ns = '', h = ''] = k.split('.');
        const head = await readHead(kv, ns, unhex(h)).catch(() => undefined);
        if (head !== undefined && !isLive(head.envelope)) {
          await kv.purge(k, { previousSeq: head.revision }).catch(() => undefined);
          await purgeChunks(kv, ns, head.envelope);
          removed += 1;
        }
      }
      return removed;
    },
  };
}

function corrupt(key: string): GatewayError {
  return new GatewayError('GW_ERR_KV_DATA_CORRUPT', {
    message: `Stored record of key "${key.slice(0, 64)}" is unreadable`,
  });
}

/** The JetStream error of a failed last-subject-sequence check (API error 10071). */
function isWrongSequence(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  const text = `${error.message} ${typeof code === 'string' || typeof code === 'number' ? code : ''}`;
  return /wrong last sequence|10071|key exists/i.test(text);
}
