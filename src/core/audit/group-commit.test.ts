import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createGroupCommit } from './group-commit.ts';

void describe('group commit queue', () => {
  void it('refuses sizes that cannot work', () => {
    const write = async () => {};
    const onError = () => {};
    assert.throws(() => createGroupCommit({ batchSize: 0, capacity: 8, write, onError }), RangeError);
    assert.throws(() => createGroupCommit({ batchSize: 1.5, capacity: 8, write, onError }), RangeError);
    assert.throws(() => createGroupCommit({ batchSize: 8, capacity: 4, write, onError }), RangeError);
  });

  void it('writes in push order, one batch at a time, never more than the batch size', async () => {
    const batches: number[][] = [];
    let writing = 0;
    let waits = 0;
    const queue = createGroupCommit<number>({
      batchSize: 5,
      capacity: 10,
      onWait: () => {
        waits += 1;
      },
      onError: (error) => assert.fail(String(error)),
      async write(batch) {
        writing += 1;
        assert.equal(writing, 1, 'a single writer');
        await new Promise((resolve) => setImmediate(resolve));
        batches.push([...batch]);
        writing -= 1;
      },
    });
    await Promise.all(Array.from({ length: 47 }, (_, i) => queue.push(i)));
    assert.deepEqual(
      batches.flat(),
      Array.from({ length: 47 }, (_, i) => i),
    );
    assert.ok(batches.every((b) => b.length <= 5));
    assert.ok(waits > 0, 'a full queue made producers wait');
    assert.equal(queue.depth, 0);
  });

  void it('settles the items of a batch whose write throws, and reports the error', async () => {
    const errors: unknown[] = [];
    const queue = createGroupCommit<number>({
      batchSize: 4,
      capacity: 4,
      onError: (error) => errors.push(error),
      write: () => Promise.reject(new Error('disk full')),
    });
    await Promise.all([queue.push(1), queue.push(2)]);
    await queue.flush();
    assert.equal(errors.length, 1);
  });

  void it('retries the suffix a batch hands back, lets producers go on meanwhile, and keeps order', async () => {
    const written: number[] = [];
    let refusals = 3;
    const retries: number[] = [];
    const queue = createGroupCommit<number>({
      batchSize: 4,
      capacity: 64,
      retryDelay: () => 5,
      onRetry: (attempt) => retries.push(attempt),
      onError: (error) => assert.fail(String(error)),
      async write(batch) {
        if (refusals > 0) {
          refusals -= 1;
          // The first item went through, the rest wait for the sink.
          written.push(batch[0] as number);
          return batch.slice(1);
        }
        written.push(...batch);
        return undefined;
      },
    });
    await queue.push(0);
    assert.equal(queue.holding, false);
    await Promise.all([1, 2, 3, 4].map((i) => queue.push(i)));
    await queue.flush();
    assert.deepEqual(written, [0, 1, 2, 3, 4]);
    assert.deepEqual(retries, [1, 2]);
    assert.equal(queue.holding, false);
  });

  void it('stop makes one last attempt, then hands back what is still unwritten, in order', async () => {
    let sinkUp = false;
    const written: number[] = [];
    // A sink that refuses everything while it is down.
    const gated = () =>
      createGroupCommit<number>({
        batchSize: 2,
        capacity: 16,
        retryDelay: () => 60_000,
        onError: (error) => assert.fail(String(error)),
        async write(batch) {
          if (!sinkUp) return batch;
          written.push(...batch);
          return [];
        },
      });
    const queue = gated();
    for (let i = 0; i < 5; i += 1) await queue.push(i);
    assert.equal(queue.holding, true);
    assert.equal(queue.depth, 5);
    const started = performance.now();
    assert.deepEqual(await queue.stop(), [0, 1, 2, 3, 4]);
    assert.ok(performance.now() - started < 1000, 'stop did not wait for the retry delay');
    await assert.rejects(queue.push(9), /stopped/);
    assert.deepEqual(await queue.stop(), []);

    // With the sink back, the last attempt writes everything.
    const again = gated();
    for (let i = 0; i < 3; i += 1) await again.push(i);
    sinkUp = true;
    assert.deepEqual(await again.stop(), []);
    assert.deepEqual(written, [0, 1, 2]);
  });

  void it('never keeps the process alive while it waits to retry', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const queue = createGroupCommit<number>({
      batchSize: 2,
      capacity: 8,
      retryDelay: () => 60_000,
      onError: (error) => assert.fail(String(error)),
      write: async (batch) => batch,
    });
    await queue.push(1);
    assert.equal(queue.holding, true);
    // The writer now sleeps for a minute; an owner that never calls stop must still exit.
    assert.equal(timers(), before);
    assert.deepEqual(await queue.stop(), [1]);
  });
});
