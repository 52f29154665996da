import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import {
  BatchGetResponseSchema,
  BatchSetResponseSchema,
  GetResponseSchema,
  SetResponseSchema,
} from '#gen/gatehouse/kv/v1/kv_pb.ts';
import { createKvBatcher, type KvBatchCalls, type KvBatcher } from './batcher.ts';
import { ERROR_CODE_HEADER } from './errors.ts';

type Sent = { readonly method: string; readonly namespace: string; readonly keys: readonly string[] };

/** A fake API: values are the key's text; `fail` decides a batch's fate by its keys. */
function fakeCalls(fail?: (method: string, keys: readonly string[]) => Error | undefined) {
  const sent: Sent[] = [];
  let version = 0n;
  const value = (key: string) => new TextEncoder().encode(`v:${key}`);
  const check = (method: string, keys: readonly string[]) => {
    const error = fail?.(method, keys);
    return error === undefined ? Promise.resolve() : Promise.reject(error);
  };
  const calls: KvBatchCalls = {
    async get(r) {
      sent.push({ method: 'Get', namespace: r.namespace ?? '', keys: [r.key ?? ''] });
      await check('Get', [r.key ?? '']);
      const found = !(r.key ?? '').startsWith('missing');
      return create(
        GetResponseSchema,
        found ? { found: true, entry: { key: r.key ?? '', value: value(r.key ?? '') } } : { found: false },
      );
    },
    async set(r) {
      sent.push({ method: 'Set', namespace: r.namespace ?? '', keys: [r.key ?? ''] });
      await check('Set', [r.key ?? '']);
      version += 1n;
      return create(SetResponseSchema, { version });
    },
    async batchGet(r) {
      sent.push({ method: 'BatchGet', namespace: r.namespace, keys: r.keys });
      await check('BatchGet', r.keys);
      return create(BatchGetResponseSchema, {
        results: r.keys.map((key) =>
          key.startsWith('missing')
            ? { key, found: false }
            : { key, found: true, entry: { key, value: value(key) } },
        ),
      });
    },
    async batchSet(r) {
      const keys = r.items.map((i) => i.key);
      sent.push({ method: 'BatchSet', namespace: r.namespace, keys });
      await check('BatchSet', keys);
      return create(BatchSetResponseSchema, {
        versions: r.items.map(() => {
          version += 1n;
          return version;
        }),
      });
    },
  };
  return { calls, sent };
}

/** Two sets and two gets on one namespace in one turn: one BatchSet and one BatchGet. */
const twoSetsTwoGets = (b: KvBatcher) =>
  Promise.allSettled([
    b.set({ namespace: 'n', key: 'a', value: new Uint8Array(1) }),
    b.set({ namespace: 'n', key: 'b', value: new Uint8Array(1) }),
    b.get({ namespace: 'n', key: 'a' }),
    b.get({ namespace: 'n', key: 'b' }),
  ]);

const text = (v: Uint8Array | undefined) => (v === undefined ? undefined : new TextDecoder().decode(v));

void describe('kv client batching', () => {
  void it('sends the gets of one turn on one namespace as one BatchGet, answers in call order', async () => {
    const { calls, sent } = fakeCalls();
    const b = createKvBatcher(calls);
    const answers = await Promise.all(
      ['a', 'missing-1', 'c'].map((key) => b.get({ namespace: 'orders', key })),
    );
    assert.deepEqual(sent, [{ method: 'BatchGet', namespace: 'orders', keys: ['a', 'missing-1', 'c'] }]);
    assert.deepEqual(
      answers.map((a) => [a.found, text(a.entry?.value)]),
      [
        [true, 'v:a'],
        [false, undefined],
        [true, 'v:c'],
      ],
    );
  });

  void it('sends a call that is alone in its turn as itself', async () => {
    const { calls, sent } = fakeCalls();
    const b = createKvBatcher(calls);
    assert.equal(text((await b.get({ namespace: 'orders', key: 'a' })).entry?.value), 'v:a');
    assert.equal((await b.set({ namespace: 'orders', key: 'a', value: new Uint8Array(3) })).version, 1n);
    assert.deepEqual(
      sent.map((s) => s.method),
      ['Get', 'Set'],
    );
  });

  void it('keeps namespaces apart and splits by item count and by bytes', async () => {
    const { calls, sent } = fakeCalls();
    const b = createKvBatcher(calls, { maxItems: 2, maxBytes: 100 });
    const big = new Uint8Array(60);
    await Promise.all([
      b.get({ namespace: 'a', key: '1' }),
      b.get({ namespace: 'b', key: '2' }),
      b.get({ namespace: 'a', key: '3' }),
      b.get({ namespace: 'a', key: '4' }),
      b.get({ namespace: 'a', key: '5' }),
      // 61 + 61 bytes exceed 100: each set of 60 bytes goes in its own run.
      b.set({ namespace: 'a', key: 'x', value: big }),
      b.set({ namespace: 'a', key: 'y', value: big }),
      b.set({ namespace: 'a', key: 'p', value: new Uint8Array(10) }),
    ]);
    assert.deepEqual(
      sent.map((s) => `${s.method} ${s.namespace} ${s.keys.join(',')}`).sort(),
      ['BatchGet a 1,3', 'BatchGet a 4,5', 'BatchSet a y,p', 'Get b 2', 'Set a x'].sort(),
    );
  });

  void it('counts keys and metadata in UTF-8 bytes against maxBytes', async () => {
    const { calls, sent } = fakeCalls();
    const b = createKvBatcher(calls, { maxBytes: 100 });
    // 20 characters of three UTF-8 bytes each: 60 bytes, so two do not fit in 100.
    const metadata = JSON.stringify('語'.repeat(18));
    await Promise.all(
      ['a', 'b'].map((key) => b.set({ namespace: 'n', key, value: new Uint8Array(0), metadata })),
    );
    assert.deepEqual(
      sent.map((x) => x.method),
      ['Set', 'Set'],
    );
  });

  void it('returns each set its own version, in call order', async () => {
    const { calls } = fakeCalls();
    const b = createKvBatcher(calls);
    const versions = await Promise.all(
      ['a', 'b', 'c'].map((key) => b.set({ namespace: 'n', key, value: new Uint8Array(1), ttlSeconds: 5 })),
    );
    assert.deepEqual(
      versions.map((v) => v.version),
      [1n, 2n, 3n],
    );
  });

  void it('never batches a compare-and-set', async () => {
    const { calls, sent } = fakeCalls();
    const b = createKvBatcher(calls);
    await Promise.all([
      b.set({ namespace: 'n', key: 'a', value: new Uint8Array(1), expectedVersion: 0n }),
      b.set({ namespace: 'n', key: 'b', value: new Uint8Array(1), expectedVersion: 7n }),
    ]);
    assert.deepEqual(
      sent.map((s) => s.method),
      ['Set', 'Set'],
    );
  });

  void it('retries a batch refused before any work call by call, so each caller gets its own answer', async () => {
    const invalid = new ConnectError('keys[1]: invalid key', Code.InvalidArgument);
    const { calls, sent } = fakeCalls((method, keys) =>
      (method === 'BatchGet' || keys.includes('bad')) && keys.includes('bad') ? invalid : undefined,
    );
    const b = createKvBatcher(calls);
    const results = await Promise.allSettled(['a', 'bad', 'c'].map((key) => b.get({ namespace: 'n', key })));
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.equal((results[1] as PromiseRejectedResult).reason, invalid);
    assert.deepEqual(
      sent.map((s) => s.method),
      ['BatchGet', 'Get', 'Get', 'Get'],
    );
    // A batch over the server's payload cap is retried the same way.
    const tooLarge = new ConnectError('Batch too large', Code.ResourceExhausted, {
      [ERROR_CODE_HEADER]: 'GW_ERR_KV_PAYLOAD_TOO_LARGE',
    });
    const second = fakeCalls((method) => (method === 'BatchSet' ? tooLarge : undefined));
    const b2 = createKvBatcher(second.calls);
    const sets = await Promise.all(
      ['a', 'b'].map((key) => b2.set({ namespace: 'n', key, value: new Uint8Array(1) })),
    );
    assert.equal(sets.length, 2);
    assert.deepEqual(
      second.sent.map((s) => s.method),
      ['BatchSet', 'Set', 'Set'],
    );
  });

  void it('fails every call of a batch that failed for all of them, without retrying', async () => {
    for (const error of [
      new ConnectError('Backend unavailable', Code.Unavailable),
      new ConnectError('denied', Code.PermissionDenied),
      new ConnectError('Too many requests', Code.ResourceExhausted),
      new Error('socket hang up'),
    ]) {
      const { calls, sent } = fakeCalls((method) => (method.startsWith('Batch') ? error : undefined));
      const b = createKvBatcher(calls);
      const results = await twoSetsTwoGets(b);
      assert.ok(
        results.every((r) => r.status === 'rejected' && r.reason === error),
        String(error),
      );
      assert.deepEqual(sent.map((s) => s.method).sort(), ['BatchGet', 'BatchSet']);
    }
  });

  void it('reports no write when a BatchSet answer does not account for every item', async () => {
    const { calls } = fakeCalls();
    const short: KvBatchCalls = {
      ...calls,
      batchSet: async () => create(BatchSetResponseSchema, { versions: [1n] }),
      batchGet: async () => create(BatchGetResponseSchema, { results: [] }),
    };
    const b = createKvBatcher(short);
    const results = await twoSetsTwoGets(b);
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.equal((r.reason as ConnectError).code, Code.Internal);
      assert.match((r.reason as ConnectError).rawMessage, /Batch(Get|Set) answered \d+ results for 2 calls/);
    }
  });

  void it('sends a call the batch could not encode alone, so only that caller fails', async () => {
    const { calls, sent } = fakeCalls();
    const b = createKvBatcher(calls);
    const results = await Promise.allSettled([
      b.set({ namespace: 'n', key: 'a', value: new Uint8Array(1) }),
      b.set({ namespace: 'n', key: 'bad-ttl', value: new Uint8Array(1), ttlSeconds: -1 }),
      b.set({ namespace: 'n', key: 'big-ttl', value: new Uint8Array(1), ttlSeconds: 2 ** 32 }),
      b.set({ namespace: 'n', key: 'c', value: new Uint8Array(1) }),
      b.get({ namespace: 'n', key: 'a' }),
      b.get({ namespace: 'n', key: 7 as unknown as string }),
      b.get({ namespace: 'n', key: 'c' }),
    ]);
    // The fake API fails the numeric key on its own; every other caller has its answer.
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled'],
    );
    assert.deepEqual(
      sent.map((x) => `${x.method} ${x.keys.join(',')}`).sort(),
      ['BatchGet a,c', 'BatchSet a,c', 'Get 7', 'Set bad-ttl', 'Set big-ttl'].sort(),
    );
  });

  void it('settles every caller when the transport throws instead of rejecting', async () => {
    const broken = new Error('thrown synchronously');
    const throwing: KvBatchCalls = {
      get: () => {
        throw broken;
      },
      set: () => {
        throw broken;
      },
      batchGet: () => {
        throw broken;
      },
      batchSet: () => {
        throw broken;
      },
    };
    const b = createKvBatcher(throwing, {
      retryEach: () => {
        throw new Error('a broken predicate');
      },
    });
    const results = await Promise.allSettled([
      b.get({ namespace: 'n', key: 'a' }),
      b.get({ namespace: 'n', key: 'b' }),
      b.get({ namespace: 'm', key: 'a' }),
      b.get({ namespace: 'm', key: 'b' }),
      b.set({ namespace: 'n', key: 'a', value: new Uint8Array(1) }),
      b.set({ namespace: 'n', key: 'b', value: new Uint8Array(1) }),
      // Calls that go alone (a compare-and-set, one the batch cannot encode) reject too.
      b.set({ namespace: 'n', key: 'c', value: new Uint8Array(1), expectedVersion: 1n }),
      b.set({ namespace: 'n', key: 'd', value: new Uint8Array(1), ttlSeconds: -1 }),
      b.get({ namespace: 'n', key: 5 as unknown as string }),
    ]);
    assert.ok(results.every((r) => r.status === 'rejected' && r.reason === broken));
  });

  void it('sends the writes of a turn before its reads', async () => {
    const { calls, sent } = fakeCalls();
    const b = createKvBatcher(calls);
    await Promise.all([
      b.get({ namespace: 'n', key: 'a' }),
      b.get({ namespace: 'n', key: 'b' }),
      b.set({ namespace: 'n', key: 'a', value: new Uint8Array(1) }),
      b.set({ namespace: 'n', key: 'b', value: new Uint8Array(1) }),
    ]);
    assert.deepEqual(
      sent.map((x) => x.method),
      ['BatchSet', 'BatchGet'],
    );
  });

  void it('sends what is queued at once on flush', async () => {
    const { calls, sent } = fakeCalls();
    const b = createKvBatcher(calls);
    const pending = [b.get({ namespace: 'n', key: 'a' }), b.get({ namespace: 'n', key: 'b' })];
    b.flush();
    assert.deepEqual(
      sent.map((s) => s.method),
      ['BatchGet'],
    );
    await Promise.all(pending);
  });

  void it('refuses bounds that cannot form a batch', () => {
    const { calls } = fakeCalls();
    assert.throws(() => createKvBatcher(calls, { maxItems: 0 }), /maxItems must be a positive integer/);
    assert.throws(() => createKvBatcher(calls, { maxItems: 1.5 }), /maxItems/);
    assert.throws(() => createKvBatcher(calls, { maxBytes: 0 }), /maxBytes must be positive/);
  });
});
