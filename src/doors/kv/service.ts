import type { MessageInitShape } from '@bufbuild/protobuf';
import type { ServiceImpl } from '@connectrpc/connect';
import type { Clock } from '#core/app';
import { GatewayError } from '#core/errors';
import {
  type BatchGetResponseSchema,
  type DeleteRequest,
  type Entry,
  type ExpireRequest,
  type PersistRequest,
  type EntrySchema,
  type KvService,
} from '#gen/gatehouse/kv/v1/kv_pb.ts';
import type { KvEntry } from './drivers/driver.ts';
import type { DriverRegistry } from './drivers/registry.ts';
import type { Guard, GuardedCall, KvCallContext, Sizes } from './guard.ts';
import {
  checkBatchSize,
  checkExpectedVersion,
  checkKey,
  checkMetadata,
  checkPageSize,
  checkTtl,
  checkValue,
  decodePageToken,
  encodePageToken,
  type ValidationLimits,
} from './validate.ts';

export interface KvServiceOptions {
  readonly guard: Guard;
  readonly registry: DriverRegistry;
  readonly clock: Clock;
  readonly limits: () => ValidationLimits & { readonly maxRequestBytes: number };
  /** Deadline of one backend call of a driver. */
  readonly timeoutOf: (driver: string) => number;
}

type EntryInit = MessageInitShape<typeof EntrySchema>;
type Impl = ServiceImpl<typeof KvService>;

/**
 * Every method of the API, independent of the protocol that carries it: the Connect handler
 * and the direct gRPC path call the same functions.
 */
export type KvMethods = {
  readonly [K in keyof Impl]: (
    message: Parameters<Impl[K]>[0],
    ctx: KvCallContext,
  ) => Promise<Awaited<ReturnType<Impl[K]>>>;
};

const none = () => 0;
/** UTF-8 bytes of a string (the bandwidth limit counts bytes, not UTF-16 code units). */
const utf8 = (text: string | undefined) => (text === undefined ? 0 : Buffer.byteLength(text, 'utf8'));
const keyBytes = (m: { namespace: string; key?: string }) => utf8(m.key);
/** Bytes a read request names (namespace and keys), for the namespace bandwidth limit. */
const readBytes = (m: { namespace: string; key?: string; keys?: readonly string[]; prefix?: string }) =>
  m.namespace.length +
  utf8(m.key) +
  utf8(m.prefix) +
  (m.keys === undefined ? 0 : m.keys.reduce((n, k) => n + utf8(k), 0));

/**
 * The KvService handlers: validate every field, route to the namespace's driver under a
 * deadline (the client's, capped by the driver's), and shape the answer. Security checks
 * happen in the guard around each handler.
 */
export function createKvService(options: KvServiceOptions): KvMethods {
  const { guard, registry, clock } = options;
  const route = (call: GuardedCall) => {
    const { name, driver } = registry.route(call.namespace);
    return { driver, o: { signal: call.within(options.timeoutOf(name)) } };
  };
  const toEntry = (e: KvEntry): EntryInit => ({
    key: e.key,
    value: e.value,
    version: BigInt(e.version),
    metadata: e.metadata,
    ttlMs: e.expiresAt === undefined ? 0n : BigInt(Math.max(1, e.expiresAt - clock.now())),
  });
  const entryBytes = (e: { value?: Uint8Array } | undefined) => e?.value?.length ?? 0;
  const read = <I extends { namespace: string }, O>(
    method: string,
    response: (o: O) => number,
    handler: (m: I, c: GuardedCall) => Promise<O>,
    items?: Sizes<I, O>['items'],
  ) => guard<I, O>(method, 'kv:read', { request: readBytes, response, ...(items && { items }) }, handler);
  const write = <I extends { namespace: string }, O>(
    method: string,
    request: (m: I) => number,
    handler: (m: I, c: GuardedCall) => Promise<O>,
    items?: Sizes<I, O>['items'],
  ) => guard<I, O>(method, 'kv:write', { request, response: none, ...(items && { items }) }, handler);

  return {
    get: read(
      'Get',
      (o: { entry?: EntryInit }) => entryBytes(o.entry),
      async (m, call) => {
        const key = checkKey(m.key);
        const { driver, o } = route(call);
        const e = await driver.get(call.namespace, key, o);
        return e === undefined ? { found: false } : { found: true, entry: toEntry(e) };
      },
    ),
    set: write(
      'Set',
      (m) => keyBytes(m) + m.value.length + utf8(m.metadata),
      async (m, call) => {
        const limits = options.limits();
        const key = checkKey(m.key);
        const value = checkValue(m.value, limits);
        const ttlMs = checkTtl(m.ttlSeconds);
        const metadata = checkMetadata(m.metadata);
        const expectedVersion = checkExpectedVersion(m.expectedVersion);
        const { driver, o } = route(call);
        const version = await driver.set(call.namespace, key, value, {
          ...o,
          ttlMs,
          metadata,
          ...(expectedVersion === undefined ? {} : { expectedVersion }),
        });
        return { version: BigInt(version) };
      },
    ),
    delete: write('Delete', keyBytes, async (m: DeleteRequest, call) => {
      const key = checkKey(m.key);
      const { driver, o } = route(call);
      return { deleted: await driver.delete(call.namespace, key, o) };
    }),
    exists: read('Exists', none, async (m, call) => {
      const key = checkKey(m.key);
      const { driver, o } = route(call);
      return { exists: await driver.exists(call.namespace, key, o) };
    }),
    batchGet: read(
      'BatchGet',
      (o: MessageInitShape<typeof BatchGetResponseSchema>) =>
        (o.results ?? []).reduce((n, r) => n + entryBytes(r.entry as Entry | undefined), 0),
      async (m, call) => {
        const limits = options.limits();
        checkBatchSize(m.keys.length, limits, 'keys');
        const keys = m.keys.map((k, i) => checkKey(k, `keys[${i}]`));
        const { driver, o } = route(call);
        // An answer carries at most what a BatchSet may write (maxValueSize in all): a thousand
        // large values would otherwise make one answer of gigabytes. The driver stops reading
        // once the values pass it; the client batcher then asks for the keys one by one.
        const entries = await driver.getMany(call.namespace, keys, {
          ...o,
          maxBytes: limits.maxRequestBytes,
        });
        return {
          results: keys.map((key, i) => {
            const e = entries[i];
            return e === undefined ? { key, found: false } : { key, found: true, entry: toEntry(e) };
          }),
        };
      },
      { field: 'keys', count: (m) => m.keys.length },
    ),
    batchSet: write(
      'BatchSet',
      (m) => m.items.reduce((n, it) => n + utf8(it.key) + it.value.length + utf8(it.metadata), 0),
      async (m, call) => {
        const limits = options.limits();
        checkBatchSize(m.items.length, limits, 'items');
        let total = 0;
        const items = m.items.map((it, i) => {
          total += it.value.length;
          return {
            key: checkKey(it.key, `items[${i}].key`),
            value: checkValue(it.value, limits, `items[${i}].value`),
            ttlMs: checkTtl(it.ttlSeconds, `items[${i}].ttl_seconds`),
            metadata: checkMetadata(it.metadata, `items[${i}].metadata`),
          };
        });
        if (total > limits.maxRequestBytes) {
          throw new GatewayError('GW_ERR_KV_PAYLOAD_TOO_LARGE', {
            message: `Batch of ${total} bytes exceeds ${limits.maxRequestBytes} bytes`,
            details: { field: 'items', limit: limits.maxRequestBytes },
          });
        }
        const { driver, o } = route(call);
        const versions = await driver.setMany(call.namespace, items, o);
        return { versions: versions.map((v) => BigInt(v)) };
      },
      { field: 'items', count: (m) => m.items.length },
    ),
    expire: write('Expire', keyBytes, async (m: ExpireRequest, call) => {
      const key = checkKey(m.key);
      const ttlMs = checkTtl(m.ttlSeconds, 'ttl_seconds', false);
      const { driver, o } = route(call);
      return { updated: await driver.expire(call.namespace, key, ttlMs, o) };
    }),
    getTTL: read('GetTTL', none, async (m, call) => {
      const key = checkKey(m.key);
      const { driver, o } = route(call);
      const info = await driver.ttl(call.namespace, key, o);
      if (info === undefined) return { found: false };
      return { found: true, expires: info.expires, ttlMs: BigInt(info.remainingMs) };
    }),
    persist: write('Persist', keyBytes, async (m: PersistRequest, call) => {
      const key = checkKey(m.key);
      const { driver, o } = route(call);
      return { updated: await driver.persist(call.namespace, key, o) };
    }),
    list: read(
      'List',
      (o: { keys?: string[] }) => (o.keys ?? []).reduce((n, k) => n + utf8(k), 0),
      async (m, call) => {
        const prefix = checkKey(m.prefix, 'prefix', true);
        const limit = checkPageSize(m.pageSize);
        const after = decodePageToken(m.pageToken);
        const { driver, o } = route(call);
        const page = await driver.list(call.namespace, prefix, {
          ...o,
          limit,
          ...(after === undefined ? {} : { after }),
        });
        const resume = page.resumeAfter ?? page.keys.at(-1);
        return {
          keys: [...page.keys],
          nextPageToken: page.more && resume !== undefined ? encodePageToken(resume) : '',
        };
      },
    ),
  };
}
