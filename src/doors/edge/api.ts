/**
 * The edge admin API on the main HTTP port: routes, policies and listener limits as JSON, behind
 * RBAC (`edge:read` for reads, `edge:write` for changes: operators and admins). A change is stored,
 * then the local table is swapped at once; other replicas pick it up from the revision poll.
 */
import type { FastifyRequest } from 'fastify';
import type { CoreServices } from '#core/app';
import { GatewayError } from '#core/errors';
import { type EdgeRoute, type FieldProblem, parsePolicy, parseRoute, policyRouteProblem } from './model.ts';
import { buildRouteTable } from './route-table.ts';
import type { EdgeService } from './service.ts';
import { EdgeConflictError, type EdgeStore } from './store.ts';

const MAX_CONNECTIONS_LIMIT = 1_000_000;

function body(request: FastifyRequest): Readonly<Record<string, unknown>> {
  const b = request.body;
  return typeof b === 'object' && b !== null && !Array.isArray(b) ? (b as Record<string, unknown>) : {};
}

function invalid(
  code: 'GW_ERR_EDGE_ROUTE_INVALID' | 'GW_ERR_EDGE_POLICY_INVALID',
  problems: readonly FieldProblem[],
) {
  return new GatewayError(code, {
    message: problems.map((p) => `"${p.field}" must be ${p.expected}`).join('; '),
    details: { errors: problems },
  });
}

/** Awaits a store insert, turning a uniqueness conflict into the door's own code. */
async function orConflict(
  insert: Promise<void>,
  code: 'GW_ERR_EDGE_ROUTE_EXISTS' | 'GW_ERR_EDGE_POLICY_EXISTS',
  id: string,
  message: string,
): Promise<void> {
  try {
    await insert;
  } catch (error) {
    if (!(error instanceof EdgeConflictError)) throw error;
    throw new GatewayError(code, { message, details: { id } });
  }
}

/** What each group of endpoints needs. */
interface Api {
  readonly app: CoreServices['http']['app'];
  readonly canRead: ReturnType<CoreServices['http']['requirePermission']>;
  readonly canWrite: ReturnType<CoreServices['http']['requirePermission']>;
  readonly store: EdgeStore;
  readonly service: EdgeService;
  /** Audits a change, then swaps the local table at once (other replicas poll). */
  changed(
    request: FastifyRequest,
    action: string,
    resource: string,
    details: Record<string, unknown>,
  ): Promise<void>;
}

/** Registers `/api/edge/*`. */
export function registerEdgeApi(core: CoreServices, store: EdgeStore, service: EdgeService): void {
  const api: Api = {
    app: core.http.app,
    canRead: core.http.requirePermission('edge:read', () => ({ type: 'edge' })),
    canWrite: core.http.requirePermission('edge:write', () => ({ type: 'edge' })),
    store,
    service,
    async changed(request, action, resource, details) {
      await core.audit.record({
        actor: request.principal?.id ?? 'anonymous',
        action,
        resource,
        decision: 'allow',
        requestId: request.id,
        clientIp: request.clientIp,
        details,
      });
      await service.refresh(true);
    },
  };
  registerRouteEndpoints(api);
  registerPolicyEndpoints(api);
  registerListenerEndpoints(api);
  registerRemoval(api, 'route', 'GW_ERR_EDGE_ROUTE_NOT_FOUND', (id) => store.removeRoute(id));
  registerRemoval(api, 'policy', 'GW_ERR_EDGE_POLICY_NOT_FOUND', (id) => store.removePolicy(id));
}

function registerRemoval(
  api: Api,
  kind: 'route' | 'policy',
  code: 'GW_ERR_EDGE_ROUTE_NOT_FOUND' | 'GW_ERR_EDGE_POLICY_NOT_FOUND',
  remove: (id: string) => Promise<boolean>,
): void {
  const path = `/api/edge/${kind === 'route' ? 'routes' : 'policies'}/:id`;
  api.app.delete<{ Params: { id: string } }>(path, { preHandler: api.canWrite }, async (request, reply) => {
    const { id } = request.params;
    if (!(await remove(id))) throw new GatewayError(code, { message: `No ${kind} "${id}"`, details: { id } });
    await api.changed(request, `edge.${kind}.delete`, `${kind}:${id}`, {});
    return reply.code(204).send();
  });
}

/** Checks that the whole table would still build and the certificate loads, before storing. */
function checkRouteFits(service: EdgeService, route: EdgeRoute): void {
  try {
    buildRouteTable(
      [...service.table.routes.filter((r) => r.id !== route.id), route],
      service.table.policies,
    );
    if (route.mode === 'l7' && route.certFile !== undefined && route.keyFile !== undefined) {
      service.certificates.context(route.certFile, route.keyFile);
    }
  } catch (error) {
    if (error instanceof RangeError) {
      throw new GatewayError('GW_ERR_EDGE_ROUTE_EXISTS', {
        message: error.message,
        details: { id: route.id },
      });
    }
    throw invalid('GW_ERR_EDGE_ROUTE_INVALID', [
      { field: 'certFile', expected: 'a readable certificate and key pair' },
    ]);
  }
}

function registerRouteEndpoints(api: Api): void {
  const { app, service } = api;
  app.get('/api/edge/routes', { preHandler: api.canRead }, async () => ({ routes: service.table.routes }));
  app.post('/api/edge/routes', { preHandler: api.canWrite }, async (request, reply) => {
    const route = parseRoute(body(request));
    if (Array.isArray(route)) throw invalid('GW_ERR_EDGE_ROUTE_INVALID', route);
    if (!service.listenerIds.includes(route.listener)) {
      throw invalid('GW_ERR_EDGE_ROUTE_INVALID', [
        { field: 'listener', expected: `one of ${service.listenerIds.join(', ')}` },
      ]);
    }
    checkRouteFits(service, route);
    const taken = `Route "${route.id}" or host "${route.host}" on listener "${route.listener}" already exists`;
    await orConflict(api.store.addRoute(route), 'GW_ERR_EDGE_ROUTE_EXISTS', route.id, taken);
    await api.changed(request, 'edge.route.create', `route:${route.id}`, {
      host: route.host,
      backend: route.backend,
    });
    return reply.code(201).send(route);
  });
}

function registerPolicyEndpoints(api: Api): void {
  const { app, service } = api;
  app.get('/api/edge/policies', { preHandler: api.canRead }, async () => ({
    policies: service.table.policies,
  }));
  app.post('/api/edge/policies', { preHandler: api.canWrite }, async (request, reply) => {
    const policy = parsePolicy(body(request));
    if (Array.isArray(policy)) throw invalid('GW_ERR_EDGE_POLICY_INVALID', policy);
    // Policies act on HTTP requests, which only an L7 route has. The route is read in the
    // insert's transaction, not from this replica's table, which may lag another replica's change.
    const check = (route: EdgeRoute | undefined) => {
      const problem = policyRouteProblem(policy, route);
      if (problem !== undefined) throw invalid('GW_ERR_EDGE_POLICY_INVALID', [problem]);
    };
    const taken = `Policy "${policy.id}" already exists`;
    await orConflict(api.store.addPolicy(policy, check), 'GW_ERR_EDGE_POLICY_EXISTS', policy.id, taken);
    await api.changed(request, 'edge.policy.create', `policy:${policy.id}`, {
      route: policy.route,
      kind: policy.kind,
    });
    return reply.code(201).send(policy);
  });
}

function registerListenerEndpoints(api: Api): void {
  const { app, service } = api;
  const view = (id: string) => {
    if (!service.listenerIds.includes(id)) {
      throw new GatewayError('GW_ERR_EDGE_LISTENER_NOT_FOUND', {
        message: `No listener "${id}"`,
        details: { id },
      });
    }
    return {
      id,
      maxConnections: service.maxConnections(id),
      activeConnections: service.listener(id)?.active ?? 0,
      port: service.listener(id)?.port ?? 0,
    };
  };
  app.get('/api/edge/listeners', { preHandler: api.canRead }, async () => ({
    listeners: service.listenerIds.map(view),
  }));
  app.get<{ Params: { id: string } }>(
    '/api/edge/listeners/:id',
    { preHandler: api.canRead },
    async (request) => view(request.params.id),
  );
  app.patch<{ Params: { id: string } }>(
    '/api/edge/listeners/:id',
    { preHandler: api.canWrite },
    async (request) => {
      const { id } = request.params;
      view(id);
      const max = body(request)['maxConnections'];
      if (typeof max !== 'number' || !Number.isSafeInteger(max) || max < 1 || max > MAX_CONNECTIONS_LIMIT) {
        const expected = `an integer from 1 to ${MAX_CONNECTIONS_LIMIT}`;
        throw new GatewayError('GW_ERR_EDGE_LISTENER_LIMIT_INVALID', {
          message: `"maxConnections" must be ${expected}`,
          details: { errors: [{ field: 'maxConnections', expected }] },
        });
      }
      await api.store.setMaxConnections(id, max);
      await api.changed(request, 'edge.listener.update', `listener:${id}`, { maxConnections: max });
      return view(id);
    },
  );
}
