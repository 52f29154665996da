import type { Principal, Action, Resource } from '#core/rbac';
import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by `http.authenticate`; absent on anonymous routes. */
    principal?: Principal;
    /** The real client address (after trusted proxies). */
    clientIp: string;
  }
}

/**
 * The main HTTP server (Fastify). ARCHITECTURE.md rule 6 lets core/http hand out the Fastify
 * instance: the core API and the HTTP doors register routes on it. GatewayErrors thrown by a
 * handler become `application/problem+json` unless a door installs its own error handler in
 * its plugin scope (the registry door answers in each ecosystem's own error form).
 */
export interface HttpServer {
  readonly app: FastifyInstance;
  /** preHandler that authenticates the request (bearer, API key, client certificate) and sets `request.principal`. */
  readonly authenticate: preHandlerAsyncHookHandler;
  /** preHandler that authenticates, then authorizes `action` on the resource returned by `resource(request)`. */
  requirePermission(
    action: Action,
    resource?: (request: FastifyRequest) => Resource,
  ): preHandlerAsyncHookHandler;
  /** Sends a GatewayError (or anything thrown) as problem+json, logging the cause with its errorId. */
  sendError(request: FastifyRequest, reply: FastifyReply, error: unknown): FastifyReply;
  /** The bound address once listening, e.g. `http://127.0.0.1:7070`. */
  readonly url: string;
}
