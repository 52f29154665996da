import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import type { BlobStore } from './port.ts';

async function readAll(stream: Readable | undefined): Promise<Buffer> {
  assert.ok(stream, 'expected a stream');
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function* chunked(data: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function collect(store: BlobStore, prefix?: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const item of store.list(prefix)) keys.push(item.key);
  return keys.sort();
}

/**
 * The one BlobStore contract suite (ARCHITECTURE.md, Tests): every implementation runs it.
 * `open` returns a fresh, empty store; `large` is a size that forces multi-part staging.
 */
export function blobStoreContract(
  name: string,
  open: () => Promise<BlobStore>,
  options: { readonly large: number; readonly skip?: string | false } = { large: 3 * 1024 * 1024 },
): void {
  void describe(`BlobStore contract: ${name}`, { skip: options.skip ?? false }, () => {
    void it('round-trips bytes, stats and lists them', async () => {
      const store = await open();
      const data = randomBytes(100_000);
      const stat = await store.put('aa/one', chunked(data, 7000));
      assert.equal(stat.size, data.length);
      assert.deepEqual(await readAll(await store.get('aa/one')), data);
      assert.equal((await store.stat('aa/one'))?.size, data.length);
      await store.put('bb/two', chunked(Buffer.from('x'), 1));
      assert.deepEqual(await collect(store), ['aa/one', 'bb/two']);
      assert.deepEqual(await collect(store, 'aa/'), ['aa/one']);
    });

    void it('stores an empty blob', async () => {
      const store = await open();
      assert.equal((await store.put('empty', chunked(Buffer.alloc(0), 1))).size, 0);
      assert.equal((await readAll(await store.get('empty'))).length, 0);
    });

    void it('reads inclusive byte ranges', async () => {
      const store = await open();
      const data = randomBytes(50_000);
      await store.put('ranged', chunked(data, 4096));
      assert.deepEqual(
        await readAll(await store.get('ranged', { start: 10, end: 19 })),
        data.subarray(10, 20),
      );
      assert.deepEqual(
        await readAll(await store.get('ranged', { start: 49_999, end: 49_999 })),
        data.subarray(49_999),
      );
    });

    void it('streams a large blob through staging intact', async () => {
      const store = await open();
      const data = randomBytes(options.large);
      await store.put('big/blob', chunked(data, 65_536));
      const back = await readAll(await store.get('big/blob'));
      assert.equal(
        createHash('sha256').update(back).digest('hex'),
        createHash('sha256').update(data).digest('hex'),
      );
    });

    void it('answers undefined and false for absent keys', async () => {
      const store = await open();
      assert.equal(await store.get('missing/key'), undefined);
      assert.equal(await store.stat('missing/key'), undefined);
      assert.equal(await store.delete('missing/key'), false);
    });

    void it('deletes a blob', async () => {
      const store = await open();
      await store.put('gone', chunked(Buffer.from('bytes'), 2));
      assert.equal(await store.delete('gone'), true);
      assert.equal(await store.stat('gone'), undefined);
    });

    void it('leaves nothing visible when the source fails midway', async () => {
      const store = await open();
      async function* failing(): AsyncGenerator<Uint8Array> {
        yield randomBytes(options.large);
        throw new Error('client went away');
      }
      await assert.rejects(store.put('half', failing()), /client went away/);
      assert.equal(await store.stat('half'), undefined);
      assert.deepEqual(await collect(store), []);
    });

    void it('leaves nothing visible when aborted and sweeps staging leftovers', async () => {
      const store = await open();
      const controller = new AbortController();
      async function* slow(): AsyncGenerator<Uint8Array> {
        yield randomBytes(options.large);
        controller.abort();
        yield randomBytes(10);
      }
      await assert.rejects(store.put('aborted', slow(), { signal: controller.signal }));
      assert.equal(await store.stat('aborted'), undefined);
      assert.ok((await store.sweepStaging(0)) >= 0);
      assert.equal(await store.sweepStaging(0), 0);
    });

    void it('replaces a blob atomically when the same key is written again', async () => {
      const store = await open();
      await store.put('same', chunked(Buffer.from('first'), 5));
      await store.put('same', chunked(Buffer.from('second'), 6));
      assert.equal((await readAll(await store.get('same'))).toString(), 'second');
    });

    void it('rejects keys that could escape the store', async () => {
      const store = await open();
      for (const key of ['../x', '/abs', 'a/../../b', 'A', '', 'a//b', 'a\\b']) {
        await assert.rejects(store.put(key, chunked(Buffer.from('x'), 1)), RangeError, key);
        await assert.rejects(store.get(key), RangeError, key);
      }
    });

    void it('pings', async () => {
      const store = await open();
      await store.ping();
      await store.close();
    });
  });
}
