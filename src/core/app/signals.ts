/** The part of `process` the signal handlers use; tests pass an EventEmitter. */
export interface SignalTarget {
  on(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  off(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
}

/** Options of `installSignalHandlers`. */
export interface SignalHandlerOptions {
  /** Drains and stops everything; its promise settling ends the process. */
  readonly onShutdown: (signal: NodeJS.Signals) => Promise<void>;
  /** Reloads the dynamic configuration (SIGHUP). */
  readonly onReload?: () => Promise<void> | void;
  /** Called with the exit code: 0 after a clean drain, 1 when shutdown failed, 130 when forced. */
  readonly exit?: (code: number) => void;
  /** Hard bound in milliseconds after the first signal; past it the process exits with 1. */
  readonly forceAfterMs?: number;
  readonly target?: SignalTarget;
  /** Told about what happens, e.g. a forced exit; defaults to nothing. */
  readonly onEvent?: (event: 'shutdown' | 'forced' | 'reload' | 'reload-failed', detail?: unknown) => void;
}

const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/**
 * Installs SIGTERM/SIGINT (drain, then exit 0) and SIGHUP (reload) handlers. A second stop
 * signal forces an immediate exit, for the operator who presses Ctrl-C twice. Returns a function
 * that removes the handlers.
 */
export function installSignalHandlers(options: SignalHandlerOptions): () => void {
  const target: SignalTarget = options.target ?? process;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const notify = options.onEvent ?? (() => {});
  let shuttingDown = false;
  let forceTimer: NodeJS.Timeout | undefined;

  const onStop = (signal: NodeJS.Signals) => {
    if (shuttingDown) {
      notify('forced', signal);
      clearTimeout(forceTimer);
      exit(130);
      return;
    }
    shuttingDown = true;
    notify('shutdown', signal);
    if (options.forceAfterMs !== undefined) {
      forceTimer = setTimeout(() => {
        notify('forced', 'deadline');
        exit(1);
      }, options.forceAfterMs);
      forceTimer.unref();
    }
    options.onShutdown(signal).then(
      () => {
        clearTimeout(forceTimer);
        exit(0);
      },
      (error: unknown) => {
        clearTimeout(forceTimer);
        notify('forced', error);
        exit(1);
      },
    );
  };
  const onHangup = () => {
    if (options.onReload === undefined || shuttingDown) return;
    notify('reload');
    Promise.resolve()
      .then(options.onReload)
      .catch((error: unknown) => notify('reload-failed', error));
  };

  for (const signal of STOP_SIGNALS) target.on(signal, onStop);
  target.on('SIGHUP', onHangup);
  return () => {
    for (const signal of STOP_SIGNALS) target.off(signal, onStop);
    target.off('SIGHUP', onHangup);
    clearTimeout(forceTimer);
  };
}
