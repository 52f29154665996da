/**
 * Response deadlines for the L7 proxy without a timer per request. Every request of a listener
 * has the same timeout, so deadlines are armed in increasing order: an insertion-ordered set is a
 * queue, disarming is a delete, and one timer follows the earliest armed deadline. Under load the
 * timer fires about once per timeout instead of being created and cleared for every request.
 */

/** An armed deadline; pass it to `disarm`. */
export interface Deadline {
  readonly at: number;
  readonly onTimeout: () => void;
}

export interface DeadlineQueue {
  /** Calls `onTimeout` after the queue's timeout unless disarmed first. */
  arm(onTimeout: () => void): Deadline;
  disarm(deadline: Deadline | undefined): void;
  /** Armed deadlines. */
  readonly size: number;
}

/** A queue whose deadlines fire `timeoutMs` after they are armed; `now` is in milliseconds. */
export function createDeadlineQueue(
  timeoutMs: number,
  now: () => number = performance.now.bind(performance),
): DeadlineQueue {
  const armed = new Set<Deadline>();
  let timer: NodeJS.Timeout | undefined;
  let timerAt = Number.POSITIVE_INFINITY;

  const schedule = (at: number) => {
    timerAt = at;
    timer = setTimeout(fire, Math.max(1, Math.ceil(at - now())));
    timer.unref();
  };

  function fire(): void {
    timer = undefined;
    timerAt = Number.POSITIVE_INFINITY;
    const t = now();
    for (const deadline of armed) {
      if (deadline.at > t) {
        schedule(deadline.at);
        return;
      }
      armed.delete(deadline);
      deadline.onTimeout();
    }
  }

  return {
    arm(onTimeout) {
      const deadline = { at: now() + timeoutMs, onTimeout };
      armed.add(deadline);
      if (timer === undefined || deadline.at < timerAt) {
        if (timer !== undefined) clearTimeout(timer);
        schedule(deadline.at);
      }
      return deadline;
    },
    disarm(deadline) {
      if (deadline !== undefined) armed.delete(deadline);
    },
    get size() {
      return armed.size;
    },
  };
}

/** The part of a request stream the response deadline watches. */
interface RequestEnd {
  readonly readableEnded: boolean;
  once(event: 'end', listener: () => void): unknown;
  off(event: 'end', listener: () => void): unknown;
}

/**
 * Arms the response deadline once the request body is sent (client-streaming gRPC may take long
 * to send; the deadline covers only the wait for the response headers); returns the disarm.
 * `ended` says the request is known to have no more body (an HTTP/2 HEADERS frame with
 * END_STREAM, whose stream is never read and so never emits 'end').
 */
export function responseDeadline(
  queue: DeadlineQueue,
  request: RequestEnd,
  onTimeout: () => void,
  ended = request.readableEnded,
): () => void {
  let deadline: Deadline | undefined;
  const arm = () => {
    deadline = queue.arm(onTimeout);
  };
  if (ended) arm();
  else request.once('end', arm);
  return () => {
    if (deadline === undefined) request.off('end', arm);
    queue.disarm(deadline);
    deadline = undefined;
  };
}
