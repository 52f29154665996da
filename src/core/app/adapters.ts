import type { App, CoreServices, HealthStatus } from './app.ts';

/**
 * A readiness check from a `ping(timeoutMs)` (Database, Cache): ok when it resolves, not ok
 * with the error message when it rejects.
 */
export function pingCheck(
  ping: (timeoutMs?: number) => Promise<void>,
  timeoutMs = 1000,
): () => Promise<HealthStatus> {
  return () =>
    ping(timeoutMs).then(
      () => ({ ok: true }),
      (error: unknown) => ({ ok: false, detail: error instanceof Error ? error.message : String(error) }),
    );
}

/** Something that listens and drains: the main HTTP server, a door's own listener. */
export interface Listener {
  listen(): Promise<unknown>;
  close(deadline?: AbortSignal): Promise<void>;
}

/**
 * An App around a listener, so that `runApps` starts it after the doors registered their
 * routes and stops it first, draining in-flight requests before the doors go away.
 */
export function listenerApp(name: string, listener: Listener): App {
  let started = false;
  return {
    name,
    provision: (_core: CoreServices) => Promise.resolve(),
    validate: () => Promise.resolve(),
    async start() {
      await listener.listen();
      started = true;
    },
    async stop(deadline) {
      if (!started) return;
      started = false;
      await listener.close(deadline);
    },
    async [Symbol.asyncDispose]() {
      if (started) await listener.close(AbortSignal.timeout(1000));
      started = false;
    },
  };
}
