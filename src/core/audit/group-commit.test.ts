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
});
