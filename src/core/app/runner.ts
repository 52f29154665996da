import type { Logger } from '#core/log';
import type { App, CoreServices } from './app.ts';

/** Options of `runApps`. */
export interface RunOptions {
  readonly log: Logger;
  /** Bound of a whole stop (all apps) in milliseconds. */
  readonly shutdownTimeoutMs?: number;
}

/** Running apps; `stop` drains them in reverse start order. */
export interface AppRunner extends AsyncDisposable {
  /** Names of the apps that started, in start order. */
  readonly started: readonly string[];
  /** Stops every started app in reverse order within the deadline; calling it again joins the first stop. */
  stop(timeoutMs?: number): Promise<void>;
}

/**
 * Stops apps in reverse order sharing one deadline. An app that does not finish when the
 * deadline passes is abandoned so that the process still exits within its bound.
 */
async function stopAll(apps: readonly App[], timeoutMs: number, log: Logger): Promise<void> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error('Shutdown deadline passed')), timeoutMs);
  const expired = new Promise<'expired'>((resolve) => {
    controller.signal.addEventListener('abort', () => resolve('expired'), { once: true });
  });
  try {
    for (const app of apps.toReversed()) {
      // After the deadline the remaining apps still get stop() with an aborted signal, which
      // tells them to close at once; nobody waits for them any more.
      const stopping = app.stop(controller.signal).then(
        () => 'stopped' as const,
        (error: unknown) => {
          log.error('App failed to stop cleanly', { app: app.name, error });
          return 'failed' as const;
        },
      );
      const outcome = await Promise.race([stopping, expired]);
      if (outcome === 'expired')
        log.warn('App did not stop before the deadline', { app: app.name, timeoutMs });
      else log.info('App stopped', { app: app.name, outcome });
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Provisions and validates every app, then starts them in order. When a start fails, the apps
 * that already started are stopped in reverse and the error is rethrown, so that `serve` exits
 * non-zero with nothing left listening.
 */
export async function runApps(
  apps: readonly App[],
  core: CoreServices,
  options: RunOptions,
): Promise<AppRunner> {
  const { log } = options;
  const shutdownTimeoutMs = options.shutdownTimeoutMs ?? 30_000;
  const names = new Set<string>();
  for (const app of apps) {
    if (names.has(app.name)) throw new TypeError(`App "${app.name}" is listed twice`);
    names.add(app.name);
  }
  for (const app of apps) await app.provision(core);
  for (const app of apps) await app.validate();
  const started: App[] = [];
  for (const app of apps) {
    try {
      await app.start();
    } catch (error) {
      log.error('App failed to start; stopping the apps already started', { app: app.name, error });
      await stopAll(started, shutdownTimeoutMs, log);
      throw error;
    }
    started.push(app);
    log.info('App started', { app: app.name });
  }
  let stopping: Promise<void> | undefined;
  const stop = (timeoutMs = shutdownTimeoutMs) => {
    stopping ??= stopAll(started, timeoutMs, log);
    return stopping;
  };
  return {
    started: started.map((a) => a.name),
    stop,
    [Symbol.asyncDispose]: () => stop(),
  };
}
