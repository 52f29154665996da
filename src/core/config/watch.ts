import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

/** A set of watched files; `add` takes more, `close` ends every watch and pending call. */
export interface FileWatch {
  add(file: string): void;
  close(): void;
}

export interface FileWatchOptions {
  /** Quiet time after the last event before `onChange` runs (a write comes as several events). */
  readonly debounceMs: number;
  /** A folder could not be watched, or its watch failed (reload on change is off for it). */
  readonly onError?: (folder: string, error: unknown) => void;
}

/**
 * Calls `onChange` (debounced) when one of the files may have changed. It watches the folders,
 * not the files: a watch on a file ends with the inode that an editor's save-by-rename or a
 * `mv` replaces, and Kubernetes updates a mounted ConfigMap or Secret by swapping the `..data`
 * link beside the files (events for `..`-names only), never touching the names themselves.
 */
export function watchFiles(onChange: () => void, options: FileWatchOptions): FileWatch {
  const folders = new Map<string, { readonly names: Set<string>; watcher: FSWatcher | undefined }>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (!closed) onChange();
    }, options.debounceMs);
    timer.unref();
  };
  const open = (folder: string, names: ReadonlySet<string>): FSWatcher | undefined => {
    try {
      const watcher = watch(folder, { persistent: false }, (_event, name) => {
        if (name === null || names.has(name) || name.startsWith('..')) schedule();
      });
      watcher.on('error', (error) => {
        watcher.close();
        const entry = folders.get(folder);
        if (entry !== undefined) entry.watcher = undefined;
        options.onError?.(folder, error);
      });
      return watcher;
    } catch (error) {
      options.onError?.(folder, error);
      return undefined;
    }
  };

  return {
    add(file) {
      if (closed) return;
      const path = resolve(file);
      const folder = dirname(path);
      const entry = folders.get(folder);
      if (entry !== undefined) {
        entry.names.add(basename(path));
        return;
      }
      const names = new Set([basename(path)]);
      folders.set(folder, { names, watcher: open(folder, names) });
    },
    close() {
      closed = true;
      clearTimeout(timer);
      for (const entry of folders.values()) entry.watcher?.close();
      folders.clear();
    },
  };
}

/**
 * Runs `task` one call at a time. A call made while it runs does not join that run (which may
 * have read its inputs before the caller changed them): it gets one more run after it, shared by
 * every call made meanwhile, with their arguments folded by `merge` (the first one kept when
 * there is none; a task without arguments needs none).
 */
export function serialRuns<A, T>(
  task: (arg: A) => Promise<T>,
  merge: (queued: A, next: A) => A = (queued) => queued,
) {
  let running: Promise<T> | undefined;
  let queued: { promise: Promise<T>; arg: A } | undefined;
  const run = (arg: A): Promise<T> => {
    if (running === undefined) {
      running = task(arg).finally(() => {
        running = undefined;
      });
      return running;
    }
    if (queued !== undefined) {
      queued.arg = merge(queued.arg, arg);
      return queued.promise;
    }
    const next: { promise: Promise<T>; arg: A } = {
      arg,
      promise: running
        .then(
          () => undefined,
          () => undefined,
        )
        .then(() => {
          queued = undefined;
          return run(next.arg);
        }),
    };
    queued = next;
    return next.promise;
  };
  return run;
}
