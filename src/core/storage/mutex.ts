/** A FIFO async mutex: `lock()` resolves when the caller owns it; `unlock()` hands it on. */
export interface Mutex {
  lock(): Promise<void>;
  unlock(): void;
}

/** Creates a mutex whose waiters are served in arrival order. */
export function createMutex(): Mutex {
  const waiters: (() => void)[] = [];
  let locked = false;
  return {
    lock() {
      if (!locked) {
        locked = true;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => waiters.push(resolve));
    },
    unlock() {
      const next = waiters.shift();
      // Ownership passes straight to the next waiter, so nobody can barge in between.
      if (next === undefined) locked = false;
      else next();
    },
  };
}
