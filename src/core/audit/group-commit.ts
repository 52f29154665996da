/**
 * A bounded queue drained by one writer in batches: the group commit of the audit log. Items
 * wait in memory; the writer takes up to `batchSize` at a time and hands them to `write`, which
 * settles every item of the batch. When the queue holds `capacity` items, `push` waits until the
 * writer has taken some (back-pressure) instead of growing without bound.
 */
export interface GroupCommit<T> {
  /** Queues `item`; resolves when the batch holding it was written (or waits first when full). */
  push(item: T): Promise<void>;
  /** Resolves when the queue is empty and the writer idle (everything queued was written). */
  flush(): Promise<void>;
  /** Items waiting for the writer. */
  readonly depth: number;
}

export interface GroupCommitOptions<T> {
  readonly batchSize: number;
  readonly capacity: number;
  /** Writes one batch in queue order; records its own failures (a throw goes to `onError`). */
  readonly write: (batch: readonly T[]) => Promise<void>;
  readonly onError: (error: unknown) => void;
  /** Called each time `push` had to wait for room. */
  readonly onWait?: () => void;
}

interface Queued<T> {
  readonly item: T;
  readonly done: () => void;
}

/** Creates the queue; `write` is only ever called by one writer at a time, in order. */
export function createGroupCommit<T>(options: GroupCommitOptions<T>): GroupCommit<T> {
  const { batchSize, capacity, write } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`Audit batch size must be a positive integer, got "${batchSize}"`);
  if (!Number.isInteger(capacity) || capacity < batchSize)
    throw new RangeError(`Audit queue capacity must be at least the batch size, got "${capacity}"`);
  let queue: Queued<T>[] = [];
  // Producers waiting for room, woken in arrival order so none starves.
  const waiting: (() => void)[] = [];
  let running: Promise<void> | undefined;

  const wake = () => {
    let room = capacity - queue.length;
    while (room > 0 && waiting.length > 0) {
      waiting.shift()?.();
      room -= 1;
    }
  };

  const drain = async () => {
    // Events recorded in the same turn of the event loop join the first batch.
    await Promise.resolve();
    while (queue.length > 0) {
      const batch = queue.length <= batchSize ? queue : queue.slice(0, batchSize);
      queue = queue.length <= batchSize ? [] : queue.slice(batchSize);
      wake();
      try {
        await write(batch.map((q) => q.item));
      } catch (error) {
        options.onError(error);
      } finally {
        for (const q of batch) q.done();
      }
    }
  };

  const kick = () => {
    running ??= drain().finally(() => {
      running = undefined;
      if (queue.length > 0) kick();
    });
  };

  return {
    async push(item) {
      while (queue.length >= capacity) {
        options.onWait?.();
        await new Promise<void>((resolve) => waiting.push(resolve));
      }
      await new Promise<void>((done) => {
        queue.push({ item, done });
        kick();
      });
    },
    async flush() {
      while (running !== undefined || queue.length > 0) {
        kick();
        await running;
      }
    },
    get depth() {
      return queue.length;
    },
  };
}
