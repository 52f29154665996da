import { randomBytes } from 'node:crypto';
import { type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { type KV, type KvEntry as NatsEntry, Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Clock } from '#core/app';
import { GatewayError } from '#core/errors';
import { byteBudget, compareKeys, pick, ttlOf, versionConflict, withDeadline } from './call.ts';
import type { CallOptions, KvDriver, KvEntry, ListOptions, SetItem, SetOptions } from './driver.ts';
import { decodeEnvelope, encodeEnvelope, type Envelope } from './envelope.ts';

export interface NatsDriverOptions {
  readonly url: string;
  readonly clock: Clock;
  readonly timeoutMs: number;
  /** JetStream KV bucket holding every namespace of this driver. */
  readonly bucket?: string;
  /**
   * Age (on the NATS server's clock) after which the sweeper purges chunks no head names (left
   * by a writer that died between its chunks and its head, or whose head write timed out
   * without landing), once two sweeps in a row found them unnamed; far above any write's
   * deadline. Default 10 minutes. Also the age after which a deleted key's marker is removed.
   */
  readonly orphanChunkAgeMs?: number;
}

interface Head {
  readonly revision: number;
  readonly envelope: Envelope;
}

const hex = (s: string) => Buffer.from(s, 'utf8').toString('hex');
const unhex = (s: string) => Buffer.from(s, 'hex').toString('utf8');
// Room below the server's max_payload for the message's NATS headers (the envelope header is
// counted exactly, per write).
const HEADROOM = 8 * 1024;
const EMPTY = new Uint8Array(0);
// A plain write replaces whatever head it read with the server's revision check; a writer that
// keeps losing that race gives up with ABORTED after this many rounds.
const WRITE_ROUNDS = 16;
/** The entry's version: the revision of the write that stored its value. */
/**
 * Heads a getMany reads at once: each is at most the server's max payload (an inline value), so
 * this bounds what a batch holds before its byte budget is checked.
 */
const HEAD_WINDOW = 16;
const versionOf = (h: Head) => h.envelope.version ?? h.revision;

/**
 * NATS JetStream KV driver. One bucket (history 1) holds every namespace: entries at
 * `h.<namespace>.<hex key>` (hex keeps byte order and fits NATS key characters), values above
 * the server's max payload as chunks at `c.<namespace>.<id>.<n>` written before the head that
 * names them. The server (2.9) has no per-key TTL, so expiry lives in the envelope and is
 * checked on every read; a sweeper purges expired heads and chunks no head names. A version is
 * the stream revision of the write that stored the value (a rewrite of the expiry keeps it in
 * the envelope), and every head write is the server's own last-revision check.
 */
export function createNatsDriver(
  options: NatsDriverOptions,
): KvDriver & { sweep(): Promise<number>; destroy(): Promise<void> } {
  const { clock } = options;
  const bucket = options.bucket ?? 'gatehouse_kv';
  const orphanAgeMs = options.orphanChunkAgeMs ?? 10 * 60_000;
  let opened:
    | Promise<{ nc: NatsConnection; kv: KV; jsm: JetStreamManager; maxPayload: number; messageBytes: number }>
    | undefined;
  const open = () => {
    opened ??= (async () => {
      const nc = await connect({
        servers: options.url,
        timeout: options.timeoutMs,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
      });
      const kv = await new Kvm(jetstream(nc, { timeout: options.timeoutMs })).create(bucket, { history: 1 });
      const jsm = await jetstreamManager(nc, { timeout: options.timeoutMs, checkAPI: false });
      const maxPayload = nc.info?.max_payload ?? 1024 * 1024;
      // The largest message this driver writes: a head, a whole small record or one chunk.
      const messageBytes = Math.max(1024, maxPayload - Math.min(HEADROOM, Math.floor(maxPayload / 8)));
      return { nc, kv, jsm, maxPayload, messageBytes };
    })().catch((error: unknown) => {
      opened = undefined;
      throw error;
    });
    return opened;
  };
  const headKey = (ns: string, key: string) => `h.${ns}.${hex(key)}`;
  const chunkKey = (ns: string, id: string, n: number) => `c.${ns}.${id}.${n}`;
  const isLive = (e: Envelope) => e.expiresAt === undefined || e.expiresAt > clock.now();

  const readRecord = (kv: KV, ns: string, key: string) => readAt(kv, headKey(ns, key));
  const readHead = async (kv: KV, ns: string, key: string): Promise<Head | undefined> => {
    const record = await readRecord(kv, ns, key);
    if (record === undefined) return undefined;
    if (record.envelope === undefined) throw corrupt(key);
    return { revision: record.revision, envelope: record.envelope };
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
  const liveHead = async (kv: KV, ns: string, key: string) => {
    const head = await readHead(kv, ns, key);
    return head !== undefined && isLive(head.envelope) ? head : undefined;
  };
  /** `read`: the key's live head when the caller has just read it. */
  const get = async (ns: string, key: string, read?: Head): Promise<KvEntry | undefined> => {
    const { kv } = await open();
    // A concurrent overwrite may purge the chunks between reading the head and the chunks; the
    // second read then sees the new head.
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const head = attempt === 0 && read !== undefined ? read : await liveHead(kv, ns, key);
      if (head === undefined) return undefined;
      const value = await readValue(kv, ns, key, head.envelope);
      if (value !== undefined) {
        return {
          key,
          value,
          version: versionOf(head),
          metadata: head.envelope.metadata ?? '',
          expiresAt: head.envelope.expiresAt,
        };
      }
    }
    throw corrupt(key);
  };
  /**
   * The heads first, a window of keys at a time, adding up the values' sizes (a chunked value's
   * head carries its size): past `maxBytes` the call fails before any chunk is read, having held
   * at most a window of heads. Then the values, in parallel. A value overwritten in between is
   * read afresh (its new size is not counted: a race costs at most one value more per key).
   */
  const getMany = async (ns: string, keys: readonly string[], maxBytes: number) => {
    const { kv } = await open();
    const spend = byteBudget(maxBytes);
    const heads: (Head | undefined)[] = [];
    for (let at = 0; at < keys.length; at += HEAD_WINDOW) {
      const window = await Promise.all(keys.slice(at, at + HEAD_WINDOW).map((k) => liveHead(kv, ns, k)));
      for (const head of window) {
        spend(head === undefined ? 0 : (head.envelope.chunks?.size ?? head.envelope.value.length));
        heads.push(head);
      }
    }
    return Promise.all(
      keys.map(async (key, i) => {
        const head = heads[i];
        return head === undefined ? undefined : await get(ns, key, head);
      }),
    );
  };
  const purgeChunks = async (kv: KV, ns: string, e: Envelope | undefined) => {
    if (e?.chunks === undefined) return;
    const { id, count } = e.chunks;
    await Promise.all(
      Array.from({ length: count }, (_, n) => kv.purge(chunkKey(ns, id, n)).catch(() => undefined)),
    );
  };
  /**
   * Writes chunks first (when the record does not fit one message), then replaces the head it
   * read with the server's revision check, so the head it replaced is known and its chunks are
   * purged: two writers racing on a key never leave the loser's chunks behind. A plain write
   * retries on a lost race; a compare-and-set fails with ABORTED.
   */
  const write = async (ns: string, item: SetItem, expected?: number) => {
    const { kv, maxPayload, messageBytes } = await open();
    const base = {
      ...(item.ttlMs === undefined || item.ttlMs === 0 ? {} : { expiresAt: clock.now() + item.ttlMs }),
      ...(item.metadata === undefined ? {} : { metadata: item.metadata }),
    };
    // One message when the whole record fits (it is encoded once); else chunks and a head.
    let envelope: Envelope = { ...base, value: item.value };
    let record = item.value.length <= messageBytes ? encodeEnvelope(envelope) : undefined;
    if (record === undefined || record.length > messageBytes) {
      const id = randomBytes(16).toString('hex');
      const count = Math.ceil(item.value.length / messageBytes);
      envelope = { ...base, chunks: { id, count, size: item.value.length }, value: EMPTY };
      record = encodeEnvelope(envelope);
      if (record.length > messageBytes) {
        throw new GatewayError('GW_ERR_KV_INVALID_ARGUMENT', {
          message: `metadata: too large for the NATS server's max_payload of ${maxPayload} bytes`,
          details: { field: 'metadata', limit: maxPayload },
        });
      }
      try {
        for (let n = 0; n < count; n += 1) {
          await kv.put(chunkKey(ns, id, n), item.value.subarray(n * messageBytes, (n + 1) * messageBytes));
        }
      } catch (error) {
        await purgeChunks(kv, ns, envelope);
        throw error;
      }
    }
    const key = headKey(ns, item.key);
    // Our chunks are purged only when our head surely did not land (refused, or never sent).
    // A head write that failed otherwise (a timeout, a lost connection) may have landed and
    // named them: they stay, and the sweeper collects them if no head does.
    let maybeLanded = false;
    try {
      for (let round = 0; round < WRITE_ROUNDS; round += 1) {
        const prev = await readRecord(kv, ns, item.key);
        // A record that does not decode has no version to compare with: a compare-and-set
        // answers DATA_LOSS as Get does (not "absent", which would let "only if absent" win),
        // while a plain write replaces it below (its chunks, unknown, are left to the sweeper).
        if (expected !== undefined && prev !== undefined && prev.envelope === undefined) {
          throw corrupt(item.key);
        }
        const live =
          prev?.envelope !== undefined && isLive(prev.envelope)
            ? versionOf({ revision: prev.revision, envelope: prev.envelope })
            : 0;
        if (expected !== undefined && live !== expected) throw versionConflict(item.key, expected);
        let revision: number;
        try {
          maybeLanded = true;
          // A plain write replaces a record that does not decode like any other.
          revision =
            prev === undefined ? await kv.create(key, record) : await kv.update(key, record, prev.revision);
        } catch (error) {
          if (!isWrongSequence(error)) throw error;
          // Refused: another write came first. The next round reads it; a compare-and-set then
          // fails only if the version changed (an Expire or Persist keeps it).
          maybeLanded = false;
          continue;
        }
        await purgeChunks(kv, ns, prev?.envelope);
        return revision;
      }
      throw keptChanging(item.key);
    } catch (error) {
      if (!maybeLanded) await purgeChunks(kv, ns, envelope);
      throw error;
    }
  };
  /** Rewrites the expiry of a live head with the server's revision check, retrying on races. */
  const setExpiry = async (ns: string, key: string, expiresAt: number | undefined) => {
    const { kv } = await open();
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const head = await readHead(kv, ns, key);
      if (head === undefined || !isLive(head.envelope)) return false;
      // The value and its version stay: only the expiry changes (a new stream revision).
      const { expiresAt: _old, ...rest } = head.envelope;
      const kept = { ...rest, version: versionOf(head) };
      const next = expiresAt === undefined ? kept : { ...kept, expiresAt };
      try {
        await kv.update(headKey(ns, key), encodeEnvelope(next), head.revision);
        return true;
      } catch (error) {
        if (!isWrongSequence(error)) throw error;
      }
    }
    throw keptChanging(key);
  };
  /**
   * Purges the head it read with the server's revision check (a write that came in between is
   * read and deleted in the next round, with its own chunks), then that head's chunks. A head
   * that does not decode is deleted too and counts as present, as Get reports it (DATA_LOSS, not
   * "not found"); its chunks cannot be known and are left to the sweeper. A failed read is an
   * error, never "nothing to delete".
   */
  const remove = async (ns: string, key: string) => {
    const { kv } = await open();
    for (let round = 0; round < WRITE_ROUNDS; round += 1) {
      const record = await readRecord(kv, ns, key);
      if (record === undefined) return false;
      try {
        await kv.purge(headKey(ns, key), { previousSeq: record.revision });
      } catch (error) {
        if (!isWrongSequence(error)) throw error;
        continue;
      }
      await purgeChunks(kv, ns, record.envelope);
      return record.envelope === undefined || isLive(record.envelope);
    }
    throw keptChanging(key);
  };
  /**
   * The bucket's subjects under `filter` (without the bucket's prefix) at one instant: the
   * stream's own per-subject index, read under the server's lock in one STREAM.INFO request.
   * A subject whose last message is a delete or purge marker is included (its reader finds no
   * record), so every subject that holds a record for the whole call is there, exactly once.
   * Not `kv.keys()`: that is a last-per-subject consumer ending at the server's pending count,
   * which NATS 2.9 gets wrong once the stream has interior deletes (it reports 1 pending of
   * hundreds, and delivers some subjects twice), so a listing while keys are purged ended early
   * or held duplicates. Past the server's 100,000 subjects per answer the client reads pages by
   * offset into the sorted subjects; this driver never removes a subject from the index, so a
   * page boundary can shift only forward (a subject read twice, and deduplicated here).
   */
  const keysOf = async (filter: string) => {
    const { jsm } = await open();
    // The stream and subject names JetStream KV gives a bucket.
    const prefix = `$KV.${bucket}.`;
    const info = await jsm.streams.info(`KV_${bucket}`, { subjects_filter: `${prefix}${filter}` });
    return Object.keys(info.state.subjects ?? {})
      .filter((s) => s.startsWith(prefix))
      .map((s) => s.slice(prefix.length));
  };
  /**
   * Removes a deleted key's marker (the delete or purge message left on its subject) once it is
   * older than the orphan age on the server's clock, so deleted keys do not pile up in the
   * subject index that List and the sweeper read. Purged only up to the marker's own sequence:
   * a write that landed after it is kept (never a purge of the subject as a whole). Versions stay
   * increasing: they are stream sequences. Best effort: a failure leaves it to the next sweep.
   */
  const dropMarker = async (subject: string, marker: NatsEntry, serverNow: () => Promise<number>) => {
    if ((await serverNow()) - marker.created.getTime() < orphanAgeMs) return;
    const { jsm } = await open();
    await jsm.streams
      .purge(`KV_${bucket}`, { filter: `$KV.${bucket}.${subject}`, seq: marker.revision + 1 })
      .catch(() => undefined);
  };
  // Chunk groups no head named in the previous sweep: purged when no head names them in this
  // one either (a listing can miss a head rewritten while it runs, never twice in a row) and
  // they are older than the orphan age on the server's own clock.
  let suspects = new Set<string>();
  const sweepOrphans = async (kv: KV, named: ReadonlySet<string>, serverNow: () => Promise<number>) => {
    const chunks = await keysOf('c.>');
    if (chunks.length === 0) {
      suspects = new Set();
      return 0;
    }
    const unnamed = new Set<string>();
    let purged = 0;
    for (const k of chunks) {
      const [, ns = '', id = ''] = k.split('.');
      const group = `${ns}.${id}`;
      if (named.has(group)) continue;
      unnamed.add(group);
      if (!suspects.has(group)) continue;
      const entry = await kv.get(k).catch(() => null);
      if (entry === null || entry.operation !== 'PUT') continue;
      if ((await serverNow()) - entry.created.getTime() < orphanAgeMs) continue;
      await kv.purge(k, { previousSeq: entry.revision }).catch(() => undefined);
      purged += 1;
    }
    suspects = unnamed;
    return purged;
  };
  const run = <T>(op: string, o: CallOptions, fn: () => Promise<T>) => withDeadline('nats', op, o.signal, fn);

  return {
    kind: 'nats',
    get: (ns, key, o) => run('get', o, () => get(ns, key)),
    getMany: (ns, keys, o) => run('getMany', o, () => getMany(ns, keys, o.maxBytes)),
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
        // Subjects that are not the hex of a UTF-8 key (another writer's) name no key any call
        // could address, and are not listed.
        const p = hex(prefix);
        const after = o.after === undefined ? '' : hex(o.after);
        const candidates = (await keysOf(`h.${ns}.>`))
          .map((k) => k.slice(ns.length + 3))
          .filter((h) => h.startsWith(p) && h > after && hex(unhex(h)) === h)
          .toSorted();
        const { kv } = await open();
        const keys: string[] = [];
        // Heads are read a window at a time, in order, until one more live key than the page
        // holds is found. A subject whose record was deleted or purged reads as absent.
        for (let at = 0; at < candidates.length && keys.length <= o.limit; at += HEAD_WINDOW) {
          const window = candidates.slice(at, at + HEAD_WINDOW).map(unhex);
          // A head that does not decode is listed (Get answers DATA_LOSS for it, Delete removes
          // it): hidden, it could not be found to be deleted. A failed read fails the page.
          const records = await Promise.all(window.map((key) => readRecord(kv, ns, key)));
          records.forEach((record, i) => {
            if (record !== undefined && (record.envelope === undefined || isLive(record.envelope))) {
              keys.push(window[i] ?? '');
            }
          });
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
      // Chunk groups some head names. A head that could not be read, or a listing that failed,
      // leaves the orphan pass out: an unnamed chunk group must be known unnamed.
      const named = new Set<string>();
      const serverNow = serverClock(kv);
      let complete = true;
      for (const k of await keysOf('h.>')) {
        const [, ns = ''] = k.split('.');
        // Read by its subject: a subject no key maps to (another writer's) is read as it is.
        let raw: NatsEntry | null;
        try {
          raw = await kv.get(k);
        } catch {
          // A failed read leaves this head unknown.
          complete = false;
          continue;
        }
        if (raw !== null && raw.operation !== 'PUT') {
          await dropMarker(k, raw, serverNow);
          continue;
        }
        const record = raw === null ? undefined : recordOf(raw);
        // A record that does not decode names no chunks anyone can read.
        if (record?.envelope === undefined) continue;
        const head: Head = { revision: record.revision, envelope: record.envelope };
        // Only the head read as expired is purged: an Expire or Persist since then keeps it, and
        // its chunks stay named.
        const purged =
          !isLive(head.envelope) &&
          (await kv.purge(k, { previousSeq: head.revision }).then(
            () => true,
            () => false,
          ));
        if (purged) {
          await purgeChunks(kv, ns, head.envelope);
          removed += 1;
        } else if (head.envelope.chunks !== undefined) {
          named.add(`${ns}.${head.envelope.chunks.id}`);
        }
      }
      if (complete) removed += await sweepOrphans(kv, named, serverNow);
      return removed;
    },
  };
}

/**
 * The server's clock, read once per sweep when first needed: the server stamps every message,
 * so a probe written then gives it (no probe in sweeps that compare no ages).
 */
function serverClock(kv: KV): () => Promise<number> {
  let now: number | undefined;
  return async () => {
    if (now === undefined) {
      await kv.put('s.clock', EMPTY);
      now = (await kv.get('s.clock'))?.created.getTime() ?? Number.NEGATIVE_INFINITY;
    }
    return now;
  };
}

/** The record a stored head entry holds: its revision, and its envelope unless it does not decode. */
const recordOf = (raw: NatsEntry) => ({ revision: raw.revision, envelope: decodeEnvelope(raw.value) });

/**
 * The present record at a head subject: its revision, and its envelope unless it does not decode
 * (a foreign or damaged record, the only thing this driver calls corrupt). A failed read
 * (timeout, lost connection, server error) is thrown, never taken for "absent".
 */
async function readAt(kv: KV, subject: string) {
  const raw: NatsEntry | null = await kv.get(subject);
  if (raw === null || raw.operation !== 'PUT') return undefined;
  return recordOf(raw);
}

/** A write, Delete, Expire or Persist that kept losing the revision race (ABORTED). */
function keptChanging(key: string): GatewayError {
  return new GatewayError('GW_ERR_KV_VERSION_CONFLICT', {
    message: `Key "${key.slice(0, 64)}" kept changing`,
  });
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
