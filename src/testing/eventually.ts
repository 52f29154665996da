import assert from 'node:assert/strict';

/**
 * Polls `read` (bounded by `timeoutMs`, every `intervalMs`) until it returns `want`, for changes
 * that land asynchronously (reloads by signal or file watch, a dependency coming back); fails
 * with the last value read (and `message`, computed then when it is a function).
 */
export async function eventually<T>(
  read: () => Promise<T>,
  want: T,
  options: {
    readonly timeoutMs?: number;
    readonly intervalMs?: number;
    readonly message?: string | (() => string);
  } = {},
): Promise<void> {
  const until = Date.now() + (options.timeoutMs ?? 15_000);
  let last: T | undefined;
  while (Date.now() < until) {
    last = await read();
    if (last === want) return;
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
  }
  const { message } = options;
  assert.equal(last, want, typeof message === 'function' ? message() : message);
}
