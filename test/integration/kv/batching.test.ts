import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Code, ConnectError } from '@connectrpc/connect';
import {
  createKvBatcher,
  createKvClient,
  type KvBatcher,
  type KvClient,
} from '../../../src/doors/kv/index.ts';
import { type KvGateway, startKvGateway } from './harness.ts';

void describe('kv client batching against the gateway', () => {
  let gw: KvGateway;
  let client: KvClient;
  let batcher: KvBatcher;
  const sent: string[] = [];
  before(async () => {
    gw = await startKvGateway();
    const token = await gw.token(['operator:orders', 'reader:reports']);
    client = createKvClient({ url: gw.url, ca: gw.ca, token, timeoutMs: 10_000 });
    // Record which methods reach the gateway, to see the batches.
    batcher = createKvBatcher({
      get: (r) => (sent.push('Get'), client.get(r)),
      set: (r) => (sent.push('Set'), client.set(r)),
      batchGet: (r) => (sent.push(`BatchGet:${r.keys.length}`), client.batchGet(r)),
      batchSet: (r) => (sent.push(`BatchSet:${r.items.length}`), client.batchSet(r)),
    });
  });
  after(async () => {
    await gw?.close();
  });

  void it('writes and reads concurrent calls in batches, each caller with its own answer', async () => {
    sent.length = 0;
    const keys = Array.from({ length: 20 }, (_, i) => `o-${i}`);
    const sets = await Promise.all(
      keys.map((key) =>
        batcher.set({
          namespace: 'orders',
          key,
          value: Buffer.from(key),
          ttlSeconds: 60,
          metadata: '{"a":1}',
        }),
      ),
    );
    const versions = sets.map((s) => s.version);
    assert.equal(new Set(versions).size, keys.length, 'every item has its own version');
    assert.ok(
      versions.every((v, i) => i === 0 || v > (versions[i - 1] ?? 0n)),
      'in call order',
    );
    const gets = await Promise.all(
      [...keys, 'absent'].map((key) => batcher.get({ namespace: 'orders', key })),
    );
    assert.deepEqual(sent, ['BatchSet:20', 'BatchGet:21']);
    gets.slice(0, -1).forEach((g, i) => {
      assert.equal(g.found, true);
      assert.equal(Buffer.from(g.entry?.value ?? []).toString(), keys[i]);
      assert.equal(g.entry?.version, versions[i]);
      assert.equal(g.entry?.metadata, '{"a":1}');
      assert.ok((g.entry?.ttlMs ?? 0n) > 0n);
    });
    assert.equal(gets.at(-1)?.found, false);
  });

  void it('gives the one invalid call of a batch its own INVALID_ARGUMENT, the others their answers', async () => {
    sent.length = 0;
    const results = await Promise.allSettled([
      batcher.set({ namespace: 'orders', key: 'fine-1', value: Buffer.from('1') }),
      batcher.set({ namespace: 'orders', key: 'bad\u0000key', value: Buffer.from('2') }),
      batcher.set({ namespace: 'orders', key: 'fine-2', value: Buffer.from('3') }),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    const refused = ConnectError.from((results[1] as PromiseRejectedResult).reason);
    assert.equal(refused.code, Code.InvalidArgument);
    assert.match(refused.rawMessage, /key/);
    // The server refused the batch before writing; it was then sent again call by call.
    assert.deepEqual(sent, ['BatchSet:3', 'Set', 'Set', 'Set']);
    const written = await client.get({ namespace: 'orders', key: 'fine-2' });
    assert.equal(
      written.entry?.version,
      (results[2] as PromiseFulfilledResult<{ version: bigint }>).value.version,
    );
  });

  void it('fails every call of a batch the principal may not make', async () => {
    const writes = await Promise.allSettled([
      batcher.set({ namespace: 'reports', key: 'a', value: Buffer.from('1') }),
      batcher.set({ namespace: 'reports', key: 'b', value: Buffer.from('2') }),
    ]);
    for (const r of writes) {
      assert.equal(r.status, 'rejected');
      assert.equal(ConnectError.from(r.reason).code, Code.PermissionDenied);
    }
    const reads = await Promise.all([
      batcher.get({ namespace: 'reports', key: 'a' }),
      batcher.get({ namespace: 'reports', key: 'b' }),
    ]);
    assert.ok(reads.every((r) => !r.found));
  });
});
