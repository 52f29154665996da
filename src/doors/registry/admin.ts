import type { CoreServices } from '#core/app';
import { GatewayError } from '#core/errors';
import { ECOSYSTEMS, type Ecosystem, type PolicyDecision } from '#core/policy';
import type { VulnerabilityDatabase } from '#core/vulndb';
import type { FastifyInstance } from 'fastify';
import { audit, callerOf, type RegistryContext } from './context.ts';
import type { EcosystemHandler } from './ecosystems/handler.ts';

/** What `POST /api/registry/policy/test` answers (and `gatehouse policy test` prints). */
export interface PolicyTestAnswer {
  readonly decision: PolicyDecision;
  readonly found: boolean;
}

function body(raw: unknown): { ecosystem: Ecosystem; name: string; version: string; registry?: string } {
  const b = (raw ?? {}) as Record<string, unknown>;
  const ecosystem = b['ecosystem'];
  if (typeof ecosystem !== 'string' || !(ECOSYSTEMS as readonly string[]).includes(ecosystem)) {
    throw new GatewayError('GW_ERR_REQUEST_INVALID', { message: `Unknown ecosystem "${String(ecosystem)}"` });
  }
  if (
    typeof b['name'] !== 'string' ||
    typeof b['version'] !== 'string' ||
    b['name'] === '' ||
    b['version'] === ''
  ) {
    throw new GatewayError('GW_ERR_REQUEST_INVALID', { message: 'Both "name" and "version" are required' });
  }
  return {
    ecosystem: ecosystem as Ecosystem,
    name: b['name'],
    version: b['version'],
    ...(typeof b['registry'] === 'string' ? { registry: b['registry'] } : {}),
  };
}

/** Admin API of the door: policy test, cache invalidation, vulnerability database status. */
export function registerAdminRoutes(
  app: FastifyInstance,
  core: CoreServices,
  ctx: RegistryContext,
  handlers: readonly EcosystemHandler[],
  vulndb: VulnerabilityDatabase,
): void {
  app.post(
    '/api/registry/policy/test',
    { preHandler: core.http.requirePermission('registry:policy:test') },
    async (request): Promise<PolicyTestAnswer> => {
      const q = body(request.body);
      const handler = handlers.find((h) => h.ecosystem === q.ecosystem);
      const facts = handler === undefined ? undefined : await handler.lookup(q.name, q.version, request);
      const { registry, ...known } = facts ?? { registry: undefined };
      const subject = {
        ...q,
        ...(registry === undefined || q.registry !== undefined ? {} : { registry }),
        ...known,
      };
      const decision = await ctx.policy.current().evaluate(subject);
      return { decision, found: facts !== undefined };
    },
  );
  app.delete(
    '/api/registry/cache',
    { preHandler: core.http.requirePermission('registry:cache:invalidate') },
    async (request) => {
      const q = request.query as { ecosystem?: string; name?: string };
      const targets = handlers.filter((h) => q.ecosystem === undefined || h.ecosystem === q.ecosystem);
      if (targets.length === 0) {
        throw new GatewayError('GW_ERR_REQUEST_INVALID', {
          message: `No registry ecosystem "${q.ecosystem ?? ''}"`,
        });
      }
      let removed = 0;
      for (const h of targets) removed += await h.invalidate(q.name);
      const caller = callerOf(request);
      audit(ctx, {
        actor: caller.actor,
        action: 'registry.cache.invalidate',
        resource: `${q.ecosystem ?? '*'}:${q.name ?? '*'}`,
        decision: 'allow',
        clientIp: caller.clientIp,
        requestId: caller.requestId,
        details: { removed },
      });
      return { removed };
    },
  );
  app.get(
    '/api/registry/cache',
    { preHandler: core.http.requirePermission('registry:decisions:read') },
    async () => ctx.metadata.stats(),
  );
  app.get(
    '/api/registry/vulndb',
    { preHandler: core.http.requirePermission('registry:decisions:read') },
    async () => vulndb.status(),
  );
}
