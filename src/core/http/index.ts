/**
 * core/http: the main Fastify server, problem+json errors, authentication and authorization hooks.
 * @module
 */
/** The main server as doors see it: the Fastify instance plus authentication hooks. */
export type { HttpServer } from './port.ts';
/** The `server` configuration section and its address parsers. */
export {
  type HttpConfig,
  httpConfigSchema,
  type ListenAddress,
  parseCidr,
  parseListen,
  validateHttpConfig,
} from './config.ts';
/** Builds the main server with its lifecycle (`listen`, `close(deadline)`). */
export { createHttpServer, type HttpServerOptions, type MainHttpServer } from './server.ts';
/** Route options that exempt a route from shedding and rate limiting (probes, scrapes). */
export { INFRASTRUCTURE_ROUTE } from './builtin-routes.ts';
/** The problem+json media type and the error classifier shared by doors with their own handlers. */
export { classify as classifyHttpError, PROBLEM_JSON } from './errors.ts';
/** Credential extraction and CIDR allow-list matching, shared with other transports. */
export { credentialsOf, ipAllowed, resourceName } from './auth.ts';
/** Registers `GET /api/audit-logs` and `GET /api/audit-logs/verify` (audit:read). */
export { registerAuditRoutes } from './audit-routes.ts';
/** The structural subsets of core/app contracts the server takes (core/app imports core/http). */
export type { NowClock, ReadinessChecks, Section, TokenBucketFactory } from './deps.ts';
/** RFC 6266 attachment header with an ASCII fallback and the exact UTF-8 name. */
export { attachmentDisposition } from './content-disposition.ts';
