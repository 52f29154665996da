import { createAuthFailureAudit } from './auth-failures.ts';
import { coerceQueryAndParams, VALIDATOR_OPTIONS } from './coerce.ts';
import fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { AuditLog } from '#core/audit';
import type { Authenticator } from '#core/auth';
import { GatewayError } from '#core/errors';
import type { Logger } from '#core/log';
import { createTlsContextProvider, type TlsContextProvider } from '#core/tls';
import type { Metrics } from '#core/metrics';
import type { Action, Decision, Principal, Resource } from '#core/rbac';
import { createAuthHooks } from './auth.ts';
import { registerBuiltinRoutes } from './builtin-routes.ts';
import { type HttpConfig, validateHttpConfig } from './config.ts';
import {
  fixedSection,
  type NowClock,
  type ReadinessChecks,
  type Section,
  type TokenBucketFactory,
} from './deps.ts';
import { sendProblem } from './errors.ts';
import { installRequestHooks } from './hooks.ts';
import type { HttpServer } from './port.ts';
import { createRouteTable, type RouteTable } from './route-table.ts';
import { createDrain } from './drain.ts';
import { applySecurityHeaders, normalizeIp, requestIdOf } from './security.ts';

/** What `createHttpServer` needs; implementations are passed in, never imported. */
export interface HttpServerOptions {
  /** The `server` section (a plain value or a reloadable section for the dynamic rate limit). */
  readonly config: Section<HttpConfig> | HttpConfig;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly authenticator: Authenticator;
  readonly authorize: (principal: Principal, action: Action, resource: Resource) => Decision;
  readonly limiters: TokenBucketFactory;
  readonly clock: NowClock;
  /** Readiness checks for `/readyz` and `/api/health`; without them the server is ready while it serves. */
  readonly health?: ReadinessChecks;
  /** Receives RBAC denials; optional so that the audit module can be built after the server. */
  readonly audit?: AuditLog;
}

/** The main server with its lifecycle. */
export interface MainHttpServer extends HttpServer {
  /** Binds `server.listen`; resolves with the URL. */
  listen(): Promise<string>;
  /**
   * Stops accepting, lets in-flight requests finish until `deadline` aborts (or the configured
   * shutdownTimeout passes), then destroys the remaining connections.
   */
  close(deadline?: AbortSignal): Promise<void>;
  /** Requests currently being processed. */
  readonly inFlight: number;
  /** Sets the audit log once it exists (it may need the server's metrics and database first). */
  setAudit(audit: AuditLog): void;
}

function isSection(config: HttpServerOptions['config']): config is Section<HttpConfig> {
  return typeof (config as Section<HttpConfig>).current === 'function';
}

function buildFastify(
  config: HttpConfig,
  tls: TlsContextProvider | undefined,
  frameworkErrors: (error: Error, request: FastifyRequest, reply: FastifyReply) => void,
): FastifyInstance {
  const common = {
    logger: false,
    bodyLimit: config.bodyLimit,
    requestIdHeader: false as const,
    genReqId: (raw: { headers: Record<string, string | string[] | undefined> }) =>
      requestIdOf(raw.headers['x-request-id']),
    trustProxy: config.trustedProxies.length === 0 ? false : [...config.trustedProxies],
    // Shutting down is answered by our own hook as problem+json, not Fastify's plain 503.
    return503OnClosing: false,
    forceCloseConnections: 'idle' as const,
    requestTimeout: config.requestTimeout,
    keepAliveTimeout: config.keepAliveTimeout,
    http2SessionTimeout: config.keepAliveTimeout,
    routerOptions: { maxParamLength: 500 },
    ajv: VALIDATOR_OPTIONS,
    // A malformed percent-encoding or an over-long path parameter is refused by the router
    // before any hook runs; without this Fastify answers its own JSON, echoing the path. (Typed
    // per server flavour by Fastify; the handler only uses what both flavours share.)
    frameworkErrors: frameworkErrors as never,
  };
  if (tls === undefined) return fastify(common) as unknown as FastifyInstance;
  const requestCert = config.tls.requestClientCert;
  // HTTP/2 through ALPN with HTTP/1.1 fallback (RFC 7540 section 3.3); the version floor and
  // certificate come from the provider, which swaps them when the files change.
  return fastify({
    ...common,
    http2: true,
    https: { allowHTTP1: true, ...tls.serverOptions(), requestCert, rejectUnauthorized: false },
  }) as unknown as FastifyInstance;
}

const NO_CHECKS: ReadinessChecks = { check: () => Promise.resolve({ ok: true, checks: {} }) };

/** `http(s)://host:port` of the bound listener, IPv6 in brackets. */
function boundUrl(app: FastifyInstance, tls: boolean): string {
  const bound = app.server.address();
  if (bound === null || typeof bound === 'string') throw new TypeError('The HTTP server has no TCP address');
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return `${tls ? 'https' : 'http'}://${host}:${bound.port}`;
}

/** The TLS material of the listener, or undefined for plain HTTP. */
function loadTls(config: HttpConfig, log: Logger): Promise<TlsContextProvider | undefined> {
  const { certFile, keyFile, clientCa, minVersion } = config.tls;
  if (certFile === undefined || keyFile === undefined) return Promise.resolve(undefined);
  return createTlsContextProvider({
    certFile,
    keyFile,
    minVersion,
    log,
    ...(clientCa === undefined ? {} : { caFile: clientCa }),
  });
}

/** 405 with `Allow` when the path exists for other methods (RFC 9110 section 15.5.6), else 404. */
function notFound(request: FastifyRequest, routes: RouteTable): GatewayError {
  const path = request.url.split('?')[0] ?? '/';
  const allowed = routes.allowed(path);
  if (allowed.length === 0) {
    return new GatewayError('GW_ERR_ROUTE_NOT_FOUND', { message: `No endpoint "${request.method} ${path}"` });
  }
  return new GatewayError('GW_ERR_METHOD_NOT_ALLOWED', {
    message: `Method "${request.method}" is not allowed on this path`,
    details: { allowed },
    headers: { allow: allowed.join(', ') },
  });
}

/**
 * Creates the main HTTP server: problem+json errors, request ids, client addresses behind
 * trusted proxies, security headers, CORS, body limits, rate limiting, load shedding,
 * per-route metrics, authentication hooks and the built-in health and metrics routes.
 */
export async function createHttpServer(options: HttpServerOptions): Promise<MainHttpServer> {
  const section = isSection(options.config) ? options.config : fixedSection(options.config);
  const config = section.current();
  const address = validateHttpConfig(config);
  const { log } = options;
  const tls = await loadTls(config, log);
  const app = buildFastify(config, tls, (error, request, reply) => {
    // No hook ran for this request: give it what onRequest and onSend would have.
    request.clientIp = normalizeIp(request.ip);
    void reply.header('x-request-id', request.id);
    applySecurityHeaders(reply, tls !== undefined);
    sendProblem(log, request, reply, error);
  });
  app.addHook('preValidation', coerceQueryAndParams);
  app.decorateRequest('principal', undefined);
  app.decorateRequest('clientIp', '');
  if (tls !== undefined) tls.attach(app.server as never);
  const headersTimeout = config.headersTimeout;
  if ('headersTimeout' in app.server)
    (app.server as { headersTimeout: number }).headersTimeout = headersTimeout;

  let audit = options.audit;
  const failures = createAuthFailureAudit({
    audit: () => audit,
    limits: () => section.current().authFailureAudit,
    clock: options.clock,
  });
  const auth = createAuthHooks({
    authenticator: options.authenticator,
    authorize: options.authorize,
    get audit() {
      return audit;
    },
    log,
    clientCertificates: config.tls.requestClientCert,
    failures,
  });
  const routes = createRouteTable();
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.add(method, route.url);
  });
  const sendError = (request: FastifyRequest, reply: FastifyReply, error: unknown) =>
    sendProblem(log, request, reply, error);
  app.setErrorHandler((error, request, reply) => sendError(request, reply, error));
  app.setNotFoundHandler((request, reply) => sendError(request, reply, notFound(request, routes)));
  const state = installRequestHooks(app, {
    section,
    tls: tls !== undefined,
    auth,
    log,
    metrics: options.metrics,
    limiters: options.limiters,
  });
  registerBuiltinRoutes(app, {
    health: options.health ?? NO_CHECKS,
    metrics: options.metrics,
    auth,
    authorize: options.authorize,
    metricsAccess: () => section.current().metrics,
  });

  const drain = createDrain(app);
  let url = '';
  let closing: Promise<void> | undefined;
  const close = (deadline?: AbortSignal): Promise<void> => {
    closing ??= (async () => {
      state.beginShutdown();
      try {
        await drain.close(deadline ?? AbortSignal.timeout(config.shutdownTimeout));
      } finally {
        state.close();
        tls?.close();
        await failures.flush();
      }
    })();
    return closing;
  };

  return {
    app,
    authenticate: auth.authenticate,
    requirePermission: (action, resource) => auth.requirePermission(action, resource),
    sendError,
    get url() {
      return url;
    },
    get inFlight() {
      return state.inFlight();
    },
    setAudit(next) {
      audit = next;
    },
    async listen() {
      try {
        await app.listen({ host: address.host, port: address.port });
      } catch (cause) {
        // Start-up failures end the process; the message names the address and the reason.
        const code = (cause as NodeJS.ErrnoException).code ?? (cause as Error).message;
        state.close();
        tls?.close();
        await app.close().catch(() => undefined);
        throw new Error(`Cannot listen on "${config.listen}" (server.listen): ${code}`, { cause });
      }
      url = boundUrl(app, tls !== undefined);
      log.info('HTTP server listening', { url, http2: tls !== undefined });
      return url;
    },
    close,
  };
}
