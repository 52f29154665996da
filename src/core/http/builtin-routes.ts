import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GatewayError } from '#core/errors';
import type { Metrics } from '#core/metrics';
import { type AuthDependencies, type AuthHooks, ipAllowed } from './auth.ts';
import type { ReadinessChecks } from './deps.ts';

/** Route options that exempt probes and scrapes from shedding and rate limiting. */
export const INFRASTRUCTURE_ROUTE = { config: { gatehouse: { infrastructure: true } } } as const;

/** Registers `/healthz`, `/readyz`, `/api/health` and `/metrics`. */
export function registerBuiltinRoutes(
  app: FastifyInstance,
  deps: {
    readonly health: ReadinessChecks;
    readonly metrics: Metrics;
    readonly auth: AuthHooks;
    readonly authorize: AuthDependencies['authorize'];
    /** `server.metrics`, read per request so a reload applies at once: who may scrape without an account. */
    readonly metricsAccess: () => {
      readonly allowedCidrs: readonly string[];
      readonly token?: string | undefined;
    };
  },
): void {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  /** True when the request carries the scrape token (compared in constant time). */
  const hasScrapeToken = (request: FastifyRequest, token: string | undefined) => {
    if (token === undefined) return false;
    const scrapeToken = digest(token);
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
    return match?.[1] !== undefined && timingSafeEqual(digest(match[1]), scrapeToken);
  };

  // Liveness says only that the process still serves HTTP; a dependency outage must not make
  // an orchestrator restart a healthy process.
  app.get('/healthz', INFRASTRUCTURE_ROUTE, (_request, reply) =>
    reply.header('cache-control', 'no-store').send({ status: 'ok' }),
  );

  app.get('/readyz', INFRASTRUCTURE_ROUTE, async (_request, reply) => {
    const report = await deps.health.check();
    const failing = Object.entries(report.checks)
      .filter(([, status]) => !status.ok)
      .map(([name]) => name);
    // Anonymous probes learn which checks fail, not why: details can name internal hosts.
    return reply
      .code(report.ok ? 200 : 503)
      .header('cache-control', 'no-store')
      .send(report.ok ? { status: 'ready' } : { status: 'not ready', failing });
  });

  app.get('/api/health', async function (request, reply) {
    let detailed = false;
    // Credentials are optional here, but when sent they must be valid.
    if ((await deps.auth.identify(request)) !== undefined) {
      await deps.auth.authenticate.call(this, request, reply);
      const principal = request.principal;
      detailed =
        principal !== undefined && deps.authorize(principal, 'health:read', { type: 'health' }).allowed;
    }
    const report = await deps.health.check();
    reply.code(report.ok ? 200 : 503).header('cache-control', 'no-store');
    return detailed
      ? { status: report.ok ? 'ok' : 'unavailable', checks: report.checks }
      : { status: report.ok ? 'ok' : 'unavailable' };
  });

  // Metric labels name namespaces, routes and packages: not for anyone who can reach the port.
  app.get('/metrics', INFRASTRUCTURE_ROUTE, async function (request, reply) {
    const access = deps.metricsAccess();
    if (!hasScrapeToken(request, access.token) && !ipAllowed(request.clientIp, access.allowedCidrs)) {
      await deps.auth.authenticate.call(this, request, reply);
      const principal = request.principal;
      if (principal === undefined || !deps.authorize(principal, 'health:read', { type: 'health' }).allowed)
        throw new GatewayError('GW_ERR_RBAC_DENIED', {
          message: 'Reading /metrics needs the health:read permission',
          details: { action: 'health:read', resource: 'health' },
        });
    }
    const { contentType, body } = await deps.metrics.render();
    return reply.header('content-type', contentType).header('cache-control', 'no-store').send(body);
  });
}
