import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from '#core/errors';
import type { Logger } from '#core/log';
import type { Metrics } from '#core/metrics';
import type { AuthHooks } from './auth.ts';
import type { HttpConfig } from './config.ts';
import type { Section, TokenBucketFactory } from './deps.ts';
import { createApiRateLimit } from './limits.ts';
import { anonymousClientKey } from '#core/ratelimit';
import { applySecurityHeaders, handleCors, normalizeIp } from './security.ts';

/** What the request hooks need. */
export interface RequestHookDependencies {
  readonly section: Section<HttpConfig>;
  readonly tls: boolean;
  readonly auth: AuthHooks;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly limiters: TokenBucketFactory;
}

/** Handles on the server-wide request state. */
export interface RequestState {
  inFlight(): number;
  /** From now on every new request is answered GW_ERR_SHUTTING_DOWN. */
  beginShutdown(): void;
  close(): void;
}

const originSets = new WeakMap<readonly string[], ReadonlySet<string>>();

/** The allow-list as a set, built once per configuration value. */
function originsOf(origins: readonly string[]): ReadonlySet<string> {
  let set = originSets.get(origins);
  if (set === undefined) {
    set = new Set(origins);
    originSets.set(origins, set);
  }
  return set;
}

/** Probes and scrapes are marked so that shedding and rate limits never hide a live process. */
function isInfrastructure(request: FastifyRequest): boolean {
  const config = request.routeOptions.config as { gatehouse?: { infrastructure?: boolean } } | undefined;
  return config?.gatehouse?.infrastructure === true;
}

function metricsOf(metrics: Metrics) {
  return {
    requests: metrics.counter({
      name: 'gatehouse_http_requests_total',
      help: 'HTTP requests answered by the main server, by route pattern and status',
      labelNames: ['method', 'route', 'status'],
    }),
    duration: metrics.histogram({
      name: 'gatehouse_http_request_duration_seconds',
      help: 'Time from receiving the request to finishing the response',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    }),
    inFlight: metrics.gauge({
      name: 'gatehouse_http_requests_in_flight',
      help: 'Requests being processed now',
    }),
    shed: metrics.counter({
      name: 'gatehouse_http_requests_shed_total',
      help: 'Requests refused before any work because of the in-flight cap or shutdown',
      labelNames: ['reason'],
    }),
    limiterFailures: metrics.counter({
      name: 'gatehouse_http_rate_limiter_failures_total',
      help: 'Rate limiter backend errors; the request was let through',
      labelNames: ['limiter'],
    }),
  };
}

/**
 * Installs the server-wide hooks: request context, in-flight accounting and metrics, CORS,
 * shutdown and overload shedding, the general rate limit and the security headers.
 */
export function installRequestHooks(app: FastifyInstance, deps: RequestHookDependencies): RequestState {
  const m = metricsOf(deps.metrics);
  const rateLimit = createApiRateLimit(
    {
      current: () => deps.section.current().rateLimit,
      subscribe: (l) => deps.section.subscribe((n, p) => l(n.rateLimit, p.rateLimit)),
    },
    deps.limiters,
    deps.log,
    m.limiterFailures,
  );
  let inFlight = 0;
  let shuttingDown = false;

  const track = (request: FastifyRequest, reply: FastifyReply) => {
    inFlight += 1;
    m.inFlight.inc();
    // `close` fires both after a complete response and when the client went away, so the
    // count can never leak.
    reply.raw.once('close', () => {
      inFlight -= 1;
      m.inFlight.dec();
      const route = request.routeOptions.url ?? 'unmatched';
      const status = reply.raw.writableEnded ? String(reply.statusCode) : 'aborted';
      m.requests.inc({ method: request.method, route, status });
      m.duration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    });
  };

  app.addHook('onRequest', async (request, reply) => {
    request.clientIp = normalizeIp(request.ip);
    reply.header('x-request-id', request.id);
    track(request, reply);
    const config = deps.section.current();
    if (handleCors(request, reply, originsOf(config.cors.origins))) return reply;
    if (shuttingDown) {
      m.shed.inc({ reason: 'shutdown' });
      // Connection-specific headers are forbidden in HTTP/2 (RFC 9113 section 8.2.2).
      const headers: Record<string, string> = request.raw.httpVersionMajor < 2 ? { connection: 'close' } : {};
      throw new GatewayError('GW_ERR_SHUTTING_DOWN', { headers: { ...headers, 'retry-after': '1' } });
    }
    if (isInfrastructure(request)) return undefined;
    if (inFlight > config.maxInFlight) {
      m.shed.inc({ reason: 'overload' });
      throw new GatewayError('GW_ERR_OVERLOADED', {
        message: `More than ${config.maxInFlight} requests are in flight`,
        headers: { 'retry-after': '1' },
      });
    }
    const identity = await deps.auth.identify(request);
    const key =
      identity !== undefined && 'principal' in identity
        ? `principal:${identity.principal.id}`
        : anonymousClientKey(request.clientIp);
    await rateLimit.enforce(key, reply);
    return undefined;
  });

  app.addHook('onSend', async (request, reply, payload) => {
    applySecurityHeaders(reply, deps.tls);
    // While draining, a keep-alive HTTP/1.1 connection must close after its last response, or
    // it would hold the shutdown until the deadline (HTTP/2 sessions get GOAWAY instead).
    if (shuttingDown && request.raw.httpVersionMajor < 2) reply.header('connection', 'close');
    return payload;
  });

  return {
    inFlight: () => inFlight,
    beginShutdown: () => {
      shuttingDown = true;
    },
    close: () => rateLimit.close(),
  };
}
