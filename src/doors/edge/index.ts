/**
 * The edge door: a TLS SNI router. Each listener reads the ClientHello (and a PROXY header from
 * trusted peers) under a deadline, applies the firewall and limits to the real client address,
 * and routes by server name to an L4 passthrough or an L7 HTTP/2 + HTTP/1.1 + gRPC reverse proxy.
 * Routes, policies and listener limits live in the database and change at run time.
 * @module
 */
import { isDeepStrictEqual } from 'node:util';
import type { App, ConfigSection, CoreServices } from '#core/app';
import { registerEdgeApi } from './api.ts';
import { type EdgeConfig, edgeConfigSchema, edgeSectionProblems } from './config.ts';
import { configuredData, EdgeService } from './service.ts';
import { EDGE_MIGRATIONS, EdgeStore } from './store.ts';

/** The `edge` configuration section: listeners (static), firewall (dynamic), seed routes and policies. */
export { edgeConfigSchema };
/** The parsed `edge` section. */
export type { EdgeConfig };
/** Route, policy and limit documents as the admin API and the CLI exchange them. */
export type { EdgePolicy, EdgeRoute, ListenerLimits } from './model.ts';
/** PROXY protocol v1/v2 codec (pure), for tools and benchmarks that speak to the edge. */
export { encodeProxyV2, parseProxyHeader, type ProxyHeader } from './proxy-protocol.ts';

/**
 * The section's cross-entry rules (edgeSectionProblems, which the schema also runs, so `config
 * validate` and a reload name the key), then the seed as the store takes it.
 */
function checkConfig(config: EdgeConfig): void {
  const [problem] = edgeSectionProblems(config);
  if (problem !== undefined) throw new RangeError(`edge.${problem.field}: ${problem.expected}`);
  configuredData(config);
}

/**
 * Creates the edge door. `provision` runs migrations and registers `/api/edge/*` and the health
 * check; `start` seeds routes on first start and opens the listeners; `stop` stops accepting and
 * drains open connections until the deadline.
 */
export function createEdgeDoor(core: CoreServices, config: ConfigSection<EdgeConfig>): App {
  const log = core.log.child({ door: 'edge' });
  const store = new EdgeStore(core.db);
  let service: EdgeService | undefined;
  let unsubscribe: (() => void) | undefined;

  const stop = async (deadline: AbortSignal) => {
    unsubscribe?.();
    unsubscribe = undefined;
    await service?.stop(deadline);
  };

  return {
    name: 'edge',
    async provision() {
      await core.db.migrate(EDGE_MIGRATIONS);
      const current = config.current();
      checkConfig(current);
      service = new EdgeService(
        { log, metrics: core.metrics, audit: core.audit, limiters: core.limiters, store },
        current,
      );
      registerEdgeApi(core, store, service);
      const svc = service;
      core.health.register('door:edge', async () => {
        const down = svc.listenerIds.filter((id) => svc.listener(id) === undefined);
        return down.length === 0
          ? { ok: true }
          : { ok: false, detail: `listeners not open: ${down.join(', ')}` };
      });
    },
    async validate() {
      checkConfig(config.current());
    },
    async start() {
      if (service === undefined) throw new TypeError('The edge door was started before provision');
      await service.start();
      const svc = service;
      // Firewall rules are dynamic: a reload that validates swaps them; a bad one keeps the old
      // (refused before the swap by the vet, and guarded here for sources without one).
      const unvet = config.vet?.(checkConfig, 'edge');
      const unlisten = config.subscribe((next, previous) => {
        if (
          !isDeepStrictEqual(next.routes, previous.routes) ||
          !isDeepStrictEqual(next.policies, previous.policies)
        ) {
          log.warn(
            'edge.routes and edge.policies only seed an empty route table on first start; the changed file is not applied, change routes and policies through /api/edge or the CLI',
          );
        }
        try {
          svc.reconfigure(next);
        } catch (error) {
          log.error('Edge firewall reload rejected; keeping the previous rules', { error });
          core.audit
            .record({
              actor: 'system',
              action: 'edge.config.rejected',
              resource: 'edge:firewall',
              decision: 'error',
              reason: error instanceof Error ? error.message : String(error),
            })
            .catch(() => {});
        }
      });
      unsubscribe = () => {
        unvet?.();
        unlisten();
      };
      for (const id of service.listenerIds) {
        log.info('Edge listener open', { listener: id, port: service.listener(id)?.port });
      }
    },
    stop,
    async [Symbol.asyncDispose]() {
      await stop(AbortSignal.timeout(5000));
    },
  };
}
