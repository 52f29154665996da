/**
 * The edge admin API on the main HTTP port: routes, policies and listener limits as JSON, behind
 * RBAC (`edge:read` for reads, `edge:write` for changes: operators and admins). A change is stored,
 * then the local table is swapped at once; other replicas pick it up from the revision poll.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyRequest } from 'fastify';
import type { CoreServices } from '#core/app';
import type { Schema } from '#core/config';
import { GatewayError } from '#core/errors';
import { documentIssues, listenerLimitsSchema, policySchema, routeSchema } from './config.ts';
import {
  type EdgePolicy,
  type EdgeRoute,
  type FieldProblem,
  parsePolicy,
  parseRoute,
  policyRouteProblem,
} from './model.ts';
import { buildRouteTable } from './route-table.ts';
import type { EdgeService } from './service.ts';
import { EdgeConflictError, type EdgeStore } from './store.ts';

function body(request: FastifyRequest): Readonly<Record<string, unknown>> {
  const b = request.body;
  return typeof b === 'object' && b !== null && !Array.isArray(b) ? (b as Record<string, unknown>) : {};
}

type InvalidCode =
  | 'GW_ERR_EDGE_ROUTE_INVALID'
  | 'GW_ERR_EDGE_POLICY_INVALID'
  | 'GW_ERR_EDGE_LISTENER_LIMIT_INVALID';

function invalid(code: InvalidCode, problems: readonly FieldProblem[]) {
  return new GatewayError(code, {
    message: problems.map((p) => `"${p.field}" must be ${p.expected}`).join('; '),
    details: { errors: problems },
  });
}

/**
 * A request body checked with the schema the configuration's seed is checked with (unknown keys
 * included), then read by `read`, which cannot refuse what the schema accepted.
 */
function checkedBody<T>(
  request: FastifyRequest,
  schema: Schema<unknown>,
  what: string,
  code: InvalidCode,
  read: (input: Readonly<Record<string, unknown>>) => T | FieldProblem[],
): T {
  const input = body(request);
  const problems = documentIssues(schema, input, what);
  if (problems.length > 0) throw invalid(code, problems);
  const value = read(input);
  if (Array.isArray(value)) throw invalid(code, value);
  return value;
}

/**
 * A route as the API shows it: an l4 route has no backend protocol (the edge passes its TLS
 * through and never speaks HTTP to the backend, and a route document with one is refused), so a
 * listed route can be sent back as it is.
 */
function routeView(route: EdgeRoute): Omit<EdgeRoute, 'backendProtocol'> & Partial<EdgeRoute> {
  if (route.mode === 'l7') return route;
  const { backendProtocol: _unused, ...rest } = route;
  return rest;
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

/**
 * Checks that the whole table would still build, the certificate loads and the backend CA file
 * reads, before storing.
 */
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
  // Read on every dial to the backend: refused now rather than failing each request with 502.
  if (route.backendCaFile !== undefined && !readsAsCertificate(route.backendCaFile)) {
    throw invalid('GW_ERR_EDGE_ROUTE_INVALID', [
      { field: 'backendCaFile', expected: 'a readable PEM file of CA certificates' },
    ]);
  }
}

/** Whether a file can be read and starts with a PEM certificate. */
function readsAsCertificate(file: string): boolean {
  try {
    return new X509Certificate(readFileSync(file)).raw.length > 0;
  } catch {
    return false;
  }
}

function registerRouteEndpoints(api: Api): void {
  const { app, service } = api;
  app.get('/api/edge/routes', { preHandler: api.canRead }, async () => ({
    routes: service.table.routes.map(routeView),
  }));
  app.post('/api/edge/routes', { preHandler: api.canWrite }, async (request, reply) => {
    const route = checkedBody(request, routeSchema, 'a route', 'GW_ERR_EDGE_ROUTE_INVALID', parseRoute);
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
    return reply.code(201).send(routeView(route));
  });
}

function registerPolicyEndpoints(api: Api): void {
  const { app, service } = api;
  app.get('/api/edge/policies', { preHandler: api.canRead }, async () => ({
    policies: service.table.policies,
  }));
  app.post('/api/edge/policies', { preHandler: api.canWrite }, async (request, reply) => {
    const policy: EdgePolicy = checkedBody(
      request,
      policySchema,
      'a policy',
      'GW_ERR_EDGE_POLICY_INVALID',
      parsePolicy,
    );
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
      const { maxConnections: max } = checkedBody(
        request,
        listenerLimitsSchema,
        'listener limits',
        'GW_ERR_EDGE_LISTENER_LIMIT_INVALID',
        (input) => ({ maxConnections: input['maxConnections'] as number }),
      );
      await api.store.setMaxConnections(id, max);
      await api.changed(request, 'edge.listener.update', `listener:${id}`, { maxConnections: max });
      return view(id);
    },
  );
}
