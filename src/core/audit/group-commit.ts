/**
 * A bounded queue drained by one writer in batches: the group commit of the audit log. Items
 * wait in memory; the writer takes up to `batchSize` at a time and hands them to `write`, which
 * settles every item of the batch. When the queue holds `capacity` items, `push` waits until the
 * writer has taken some (back-pressure) instead of growing without bound.
 *
 * When the sink is unavailable, `write` hands back the items it could not write yet; they go
 * back to the head of the queue, in order, and the writer retries after a growing delay. While
 * it retries (`holding`), `push` resolves as soon as its item is queued: callers are not held up
 * by an outage, and nothing is dropped. `stop` ends the retries and hands back what is left.
 */
export interface GroupCommit<T> {
  /**
   * Queues `item`; resolves when the batch holding it was written, or at once while the writer
   * holds items for a retry (waits first when the queue is full).
   */
  push(item: T): Promise<void>;
  /** Resolves when the queue is empty and the writer idle (everything queued was written). */
  flush(): Promise<void>;
  /**
   * Lets the current write finish, makes one last attempt at what is queued, stops retrying and
   * returns the items that are still unwritten, in order (for the caller to keep elsewhere).
   */
  stop(): Promise<T[]>;
  /** Items waiting for the writer. */
  readonly depth: number;
  /** True while the writer holds items the sink refused and retries them. */
  readonly holding: boolean;
}

export interface GroupCommitOptions<T> {
  readonly batchSize: number;
  readonly capacity: number;
  /**
   * Writes one batch in queue order; records its own failures (a throw goes to `onError` and
   * settles the batch). Returns the items it could not write because the sink is unavailable:
   * a suffix of `batch`, kept for a retry. Returns nothing (or an empty array) when done.
   */
  readonly write: (batch: readonly T[]) => Promise<readonly T[] | void>;
  readonly onError: (error: unknown) => void;
  /** Called each time `push` had to wait for room. */
  readonly onWait?: () => void;
  /** Called before each retry wait, with the attempt number (1, 2, …) and the delay. */
  readonly onRetry?: (attempt: number, delayMs: number, held: number) => void;
  /** Delay before retry `attempt` (default 100 ms doubling up to 5 s). */
  readonly retryDelay?: (attempt: number) => number;
}

interface Queued<T> {
  readonly item: T;
  readonly done: () => void;
}

const defaultRetryDelay = (attempt: number) => Math.min(5000, 100 * 2 ** Math.min(attempt - 1, 6));
const settled = () => {};

/** Creates the queue; `write` is only ever called by one writer at a time, in order. */
export function createGroupCommit<T>(options: GroupCommitOptions<T>): GroupCommit<T> {
  const { batchSize, capacity, write } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`Audit batch size must be a positive integer, got "${batchSize}"`);
  if (!Number.isInteger(capacity) || capacity < batchSize)
    throw new RangeError(`Audit queue capacity must be at least the batch size, got "${capacity}"`);
  const retryDelay = options.retryDelay ?? defaultRetryDelay;
  let queue: Queued<T>[] = [];
  // Producers waiting for room, woken in arrival order so none starves.
  const waiting: (() => void)[] = [];
  let running: Promise<void> | undefined;
  let attempt = 0;
  // Set by `stop`: a failed write ends the writer instead of waiting for a retry.
  let final = false;
  let stopped = false;
  // Ends the current retry wait early (on stop).
  let interrupt: (() => void) | undefined;

  const wake = () => {
    let room = capacity - queue.length;
    while (room > 0 && waiting.length > 0) {
      waiting.shift()?.();
      room -= 1;
    }
  };

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      // A retry never keeps the process alive on its own: an owner that stops without `stop`
      // (a test that closes the database first) must still exit. `serve` calls `stop`, which
      // spools what is held.
      timer.unref();
      interrupt = () => {
        clearTimeout(timer);
        resolve();
      };
    }).finally(() => {
      interrupt = undefined;
    });

  /** Writes one batch; true when the sink handed items back (they are at the queue head again). */
  const writeBatch = async (): Promise<boolean> => {
    const batch = queue.length <= batchSize ? queue : queue.slice(0, batchSize);
    queue = queue.length <= batchSize ? [] : queue.slice(batchSize);
    wake();
    let left: readonly T[] = [];
    try {
      left = (await write(batch.map((q) => q.item))) ?? [];
    } catch (error) {
      options.onError(error);
    }
    const kept = Math.min(left.length, batch.length);
    // Everyone's push resolves: written, failed for good, or held for a retry.
    for (const q of batch) q.done();
    if (kept === 0) return false;
    queue = [...batch.slice(batch.length - kept).map((q) => ({ item: q.item, done: settled })), ...queue];
    return true;
  };

  const drain = async () => {
    // Events recorded in the same turn of the event loop join the first batch.
    await Promise.resolve();
    while (queue.length > 0) {
      if (!(await writeBatch())) {
        attempt = 0;
        continue;
      }
      attempt += 1;
      if (final) return;
      const delay = retryDelay(attempt);
      options.onRetry?.(attempt, delay, queue.length);
      await pause(delay);
    }
  };

  const kick = () => {
    if (stopped) return;
    running ??= drain().finally(() => {
      running = undefined;
      if (queue.length > 0 && !final) kick();
    });
  };

  return {
    async push(item) {
      if (stopped) throw new Error('The audit writer has stopped');
      while (queue.length >= capacity && !stopped) {
        options.onWait?.();
        await new Promise<void>((resolve) => waiting.push(resolve));
      }
      if (attempt > 0 || final) {
        // The sink is down (or the writer is stopping): keep the item, let the caller go on.
        queue.push({ item, done: settled });
        kick();
        return;
      }
      await new Promise<void>((done) => {
        queue.push({ item, done });
        kick();
      });
    },
    async flush() {
      while (!final && (running !== undefined || queue.length > 0)) {
        kick();
        await running;
      }
    },
    async stop() {
      if (stopped) return [];
      final = true;
      // A retry wait ends now and the writer makes its last attempt.
      interrupt?.();
      if (running === undefined && queue.length > 0) kick();
      await running;
      stopped = true;
      const left = queue.map((q) => q.item);
      for (const q of queue) q.done();
      queue = [];
      for (const w of waiting.splice(0)) w();
      return left;
    },
    get depth() {
      return queue.length;
    },
    get holding() {
      return attempt > 0;
    },
  };
}
