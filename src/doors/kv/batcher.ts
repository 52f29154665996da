import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import {
  type BatchGetResponse,
  type BatchSetResponse,
  type GetRequestSchema,
  type GetResponse,
  GetResponseSchema,
  type SetRequestSchema,
  type SetResponse,
  SetResponseSchema,
} from '#gen/gatehouse/kv/v1/kv_pb.ts';
import { ERROR_CODE_HEADER } from './errors.ts';

export type GetInit = MessageInitShape<typeof GetRequestSchema>;
export type SetInit = MessageInitShape<typeof SetRequestSchema>;

/**
 * The four calls batching needs, as the product's Connect client (`createKvClient`) has them;
 * any other transport of the same API can supply them too.
 */
export interface KvBatchCalls {
  get(request: GetInit): Promise<GetResponse>;
  set(request: SetInit): Promise<SetResponse>;
  batchGet(request: { namespace: string; keys: string[] }): Promise<BatchGetResponse>;
  batchSet(request: {
    namespace: string;
    items: { key: string; value: Uint8Array; ttlSeconds: number; metadata: string }[];
  }): Promise<BatchSetResponse>;
}

export interface BatchingOptions {
  /** Most calls in one batch (default 64); the server's `kv.limits.maxBatchItems` must allow it. */
  readonly maxItems?: number;
  /**
   * Most bytes of values, keys and metadata in one BatchSet (default 1 MiB): a batch must stay
   * below the server's message limit (`maxValueSize` + 1 MiB), whatever `maxValueSize` is. A
   * single larger value travels alone.
   */
  readonly maxBytes?: number;
  /**
   * Whether a failed batch is retried call by call, so each caller gets its own answer: by
   * default for INVALID_ARGUMENT and a batch over the server's payload cap, which the server
   * answers before it reads or writes anything.
   */
  readonly retryEach?: (error: unknown) => boolean;
}

export interface KvBatcher {
  /** Like `KvBatchCalls.get`; calls made in the same event-loop turn share one BatchGet. */
  get(request: GetInit): Promise<GetResponse>;
  /**
   * Like `KvBatchCalls.set`; calls made in the same turn share one BatchSet. A compare-and-set
   * (`expectedVersion`) always travels alone: a batch has no per-item condition.
   */
  set(request: SetInit): Promise<SetResponse>;
  /** Sends what is queued now instead of at the end of the turn. */
  flush(): void;
}

interface Waiter<R, T> {
  readonly request: R;
  readonly bytes: number;
  readonly resolve: (value: T) => void;
  readonly reject: (error: unknown) => void;
}

type GetWaiter = Waiter<Keyed<GetInit>, GetResponse>;
type SetWaiter = Waiter<Keyed<SetInit>, SetResponse>;

const DEFAULT_MAX_ITEMS = 64;
const DEFAULT_MAX_BYTES = 1024 * 1024;
const UINT32_MAX = 0xffff_ffff;

/** INVALID_ARGUMENT, or the payload cap: the server refused the batch before touching data. */
function refusedBeforeWork(error: unknown): boolean {
  if (!(error instanceof ConnectError)) return false;
  if (error.code === Code.InvalidArgument) return true;
  return error.metadata.get(ERROR_CODE_HEADER) === 'GW_ERR_KV_PAYLOAD_TOO_LARGE';
}

type Keyed<R> = R & { namespace: string; key: string };

/** Whether a Set request has the shapes a BatchSet item can carry (else it goes alone). */
function batchable(r: SetInit): r is Keyed<SetInit> {
  const ttl = r.ttlSeconds ?? 0;
  return (
    typeof r.namespace === 'string' &&
    typeof r.key === 'string' &&
    (r.value === undefined || r.value instanceof Uint8Array) &&
    (r.metadata === undefined || typeof r.metadata === 'string') &&
    Number.isInteger(ttl) &&
    ttl >= 0 &&
    ttl <= UINT32_MAX
  );
}

/** Splits a namespace's queue into runs that respect both bounds, in call order. */
function chunks<W extends { bytes: number }>(queue: readonly W[], maxItems: number, maxBytes: number): W[][] {
  const out: W[][] = [];
  let run: W[] = [];
  let bytes = 0;
  for (const w of queue) {
    if (run.length > 0 && (run.length >= maxItems || bytes + w.bytes > maxBytes)) {
      out.push(run);
      run = [];
      bytes = 0;
    }
    run.push(w);
    bytes += w.bytes;
  }
  if (run.length > 0) out.push(run);
  return out;
}

/**
 * Client-side batching of concurrent kv calls (ADR 0160), the way a Redis client pipelines the
 * commands of concurrent callers: Get and Set calls made in the same event-loop turn on one
 * namespace are sent as one BatchGet or BatchSet, and each caller gets its own answer. A call
 * that is alone in its turn is sent as itself, so a single call sees no difference. Every batch
 * passes the gateway's whole pipeline (authentication, authorization, validation, the
 * per-client rate limit charged per item, bandwidth, metrics, audit); a batch that fails for
 * a reason that concerns all its items (UNAVAILABLE, PERMISSION_DENIED, ...) fails each call
 * with that error, and a write is reported only when the backend confirmed the whole batch.
 */
export function createKvBatcher(calls: KvBatchCalls, options: BatchingOptions = {}): KvBatcher {
  const maxItems = options.maxItems ?? DEFAULT_MAX_ITEMS;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (!Number.isInteger(maxItems) || maxItems < 1) {
    throw new RangeError(`maxItems must be a positive integer, not ${maxItems}`);
  }
  if (!Number.isFinite(maxBytes) || maxBytes < 1)
    throw new RangeError(`maxBytes must be positive, not ${maxBytes}`);
  const retryEach = options.retryEach ?? refusedBeforeWork;
  const get = (request: GetInit) => calls.get(request);
  const set = (request: SetInit) => calls.set(request);
  let gets = new Map<string, GetWaiter[]>();
  let sets = new Map<string, SetWaiter[]>();
  let scheduled: NodeJS.Immediate | undefined;

  /** A transport that throws instead of rejecting still settles every caller. */
  const attempt = <T>(send: () => Promise<T>): Promise<T> => {
    try {
      return send();
    } catch (error) {
      return Promise.reject(error);
    }
  };
  const one = <R, T>(w: Waiter<R, T>, send: (r: R) => Promise<T>) => {
    attempt(() => send(w.request)).then(w.resolve, w.reject);
  };
  const settle = <R, T>(run: readonly Waiter<R, T>[], send: (r: R) => Promise<T>, error: unknown) => {
    let again = false;
    try {
      again = retryEach(error);
    } catch {
      // A broken predicate: the batch's own error is the answer.
    }
    if (again) for (const w of run) one(w, send);
    else for (const w of run) w.reject(error);
  };

  /**
   * Hands each caller its part of a batch's answer, or fails them all when the answer does not
   * account for every call (then no write is reported done either).
   */
  const distribute = <R, T, A>(
    run: readonly Waiter<R, T>[],
    method: string,
    answered: readonly A[],
    answer: (a: A | undefined) => T,
  ) => {
    if (answered.length !== run.length) {
      const error = new ConnectError(
        `${method} answered ${answered.length} results for ${run.length} calls`,
        Code.Internal,
      );
      for (const w of run) w.reject(error);
      return;
    }
    run.forEach((w, i) => w.resolve(answer(answered[i])));
  };

  const sendGets = (namespace: string, run: GetWaiter[]) => {
    if (run.length === 1) return one(run[0] as GetWaiter, get);
    attempt(() => calls.batchGet({ namespace, keys: run.map((w) => w.request.key) })).then(
      ({ results }) =>
        distribute(run, 'BatchGet', results, (r) =>
          create(
            GetResponseSchema,
            r?.found === true && r.entry !== undefined ? { found: true, entry: r.entry } : { found: false },
          ),
        ),
      (error: unknown) => settle(run, get, error),
    );
  };

  const sendSets = (namespace: string, run: SetWaiter[]) => {
    if (run.length === 1) return one(run[0] as SetWaiter, set);
    const items = run.map(({ request: r }) => ({
      key: r.key,
      value: r.value ?? new Uint8Array(),
      ttlSeconds: r.ttlSeconds ?? 0,
      metadata: r.metadata ?? '',
    }));
    attempt(() => calls.batchSet({ namespace, items })).then(
      ({ versions }) =>
        distribute(run, 'BatchSet', versions, (version) =>
          create(SetResponseSchema, { version: version ?? 0n }),
        ),
      (error: unknown) => settle(run, set, error),
    );
  };

  const flush = () => {
    if (scheduled !== undefined) clearImmediate(scheduled);
    scheduled = undefined;
    const g = gets;
    const s = sets;
    gets = new Map();
    sets = new Map();
    // The calls of one turn are concurrent, so no order between them is promised; writes leave
    // first, so a read issued in the same turn more often sees them.
    for (const [namespace, queue] of s) {
      for (const run of chunks(queue, maxItems, maxBytes)) sendSets(namespace, run);
    }
    for (const [namespace, queue] of g) {
      for (const run of chunks(queue, maxItems, Number.POSITIVE_INFINITY)) sendGets(namespace, run);
    }
  };
  const enqueue = <W>(queues: Map<string, W[]>, namespace: string, w: W) => {
    const queue = queues.get(namespace);
    if (queue === undefined) queues.set(namespace, [w]);
    else queue.push(w);
    scheduled ??= setImmediate(flush);
  };

  return {
    get: (request) => {
      // A call the batch could not encode goes alone, so its error stays its own.
      const { namespace, key } = request;
      if (typeof namespace !== 'string' || typeof key !== 'string') return attempt(() => get(request));
      return new Promise<GetResponse>((resolve, reject) => {
        enqueue(gets, namespace, { request: { ...request, namespace, key }, bytes: 0, resolve, reject });
      });
    },
    set: (request) => {
      if (request.expectedVersion !== undefined || !batchable(request)) return attempt(() => set(request));
      return new Promise<SetResponse>((resolve, reject) => {
        const bytes =
          (request.value?.length ?? 0) +
          Buffer.byteLength(request.key) +
          Buffer.byteLength(request.metadata ?? '');
        // A copy, as for gets: the caller may reuse its request object once `set` returns.
        enqueue(sets, request.namespace, { request: { ...request }, bytes, resolve, reject });
      });
    },
    flush,
  };
}
