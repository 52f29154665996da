import { BlockList, isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { AuditLog } from '#core/audit';
import { type Authenticator, type Credentials, credentialMethod } from '#core/auth';
import { GatewayError, isGatewayError } from '#core/errors';
import type { Logger } from '#core/log';
import type { Action, Decision, Principal, Resource } from '#core/rbac';
import { peerCertificateInfo } from '#core/tls';
import type { AuthFailureAudit } from './auth-failures.ts';
import { parseCidr } from './config.ts';

/** What the authentication hooks need. */
export interface AuthDependencies {
  readonly authenticator: Authenticator;
  readonly authorize: (principal: Principal, action: Action, resource: Resource) => Decision;
  readonly audit?: AuditLog | undefined;
  readonly log: Logger;
  /** True when the listener asks for client certificates. */
  readonly clientCertificates: boolean;
  /** Audits refused credentials (rate-limited); without it they are only counted in metrics. */
  readonly failures?: AuthFailureAudit;
}

// Refusals of the credential itself; an unavailable database or an internal error is not one.
const REFUSED_KINDS: ReadonlySet<string> = new Set(['UNAUTHENTICATED', 'PERMISSION_DENIED']);

type Identity =
  | { readonly principal: Principal }
  | { readonly error: GatewayError; readonly credential: string }
  | undefined;

/** Credentials of a request: bearer token, API key, verified client certificate. */
export function credentialsOf(request: FastifyRequest, clientCertificates: boolean): Credentials | undefined {
  const authorization = request.headers.authorization;
  const bearerMatch = authorization === undefined ? null : /^Bearer[ ]+(\S+)\s*$/i.exec(authorization);
  const apiKeyHeader = request.headers['x-api-key'];
  const apiKey = Array.isArray(apiKeyHeader) ? apiKeyHeader[0] : apiKeyHeader;
  let certificate: Credentials['certificate'];
  if (clientCertificates) {
    const socket = request.raw.socket as Partial<TLSSocket> | undefined;
    // Only a chain the handshake verified against server.tls.clientCa counts; the listener asks
    // for certificates without rejecting, so an unverified one is simply ignored here.
    if (socket?.authorized === true && typeof socket.getPeerCertificate === 'function') {
      certificate = peerCertificateInfo(socket.getPeerCertificate());
    }
  }
  const bearer = bearerMatch?.[1];
  if (bearer === undefined && (apiKey === undefined || apiKey === '') && certificate === undefined)
    return undefined;
  return {
    clientIp: request.clientIp,
    ...(bearer === undefined ? {} : { bearer }),
    ...(apiKey === undefined || apiKey === '' ? {} : { apiKey }),
    ...(certificate === undefined ? {} : { certificate }),
  };
}

/**
 * A credential header sent more than once: node keeps only the first Authorization or x-api-key
 * header, so which one counted would depend on who reads them (a proxy in front may have checked
 * another); the request is refused instead. Undefined when each came once at most.
 */
function repeatedCredential(
  request: FastifyRequest,
): Exclude<Identity, { principal: Principal } | undefined> | undefined {
  // Nothing to count on the many requests without credentials.
  if (request.headers.authorization === undefined && request.headers['x-api-key'] === undefined)
    return undefined;
  const raw = request.raw.rawHeaders;
  let authorization = 0;
  let apiKey = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] ?? '';
    // Only names of the right length are lower-cased (no string made per header).
    if (name.length === 13 && name.toLowerCase() === 'authorization') authorization++;
    else if (name.length === 9 && name.toLowerCase() === 'x-api-key') apiKey++;
  }
  if (authorization > 1)
    return {
      error: new GatewayError('GW_ERR_AUTH_TOKEN_INVALID', { message: 'More than one Authorization header' }),
      credential: 'token',
    };
  if (apiKey > 1)
    return {
      error: new GatewayError('GW_ERR_AUTH_KEY_INVALID', { message: 'More than one x-api-key header' }),
      credential: 'apikey',
    };
  return undefined;
}

const blockLists = new WeakMap<readonly string[], BlockList>();

function allowListOf(cidrs: readonly string[]): BlockList {
  let list = blockLists.get(cidrs);
  if (list === undefined) {
    list = new BlockList();
    for (const text of cidrs) {
      const cidr = parseCidr(text);
      if (cidr !== undefined) list.addSubnet(cidr.address, cidr.prefix, cidr.family === 4 ? 'ipv4' : 'ipv6');
    }
    blockLists.set(cidrs, list);
  }
  return list;
}

/** True when `ip` is inside one of `cidrs`; a malformed address is never allowed. */
export function ipAllowed(ip: string, cidrs: readonly string[]): boolean {
  const family = isIP(ip);
  if (family === 0) return false;
  return allowListOf(cidrs).check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

/** `type:namespace/id`, the audit form of an RBAC resource. */
export function resourceName(resource: Resource): string {
  const ns = resource.namespace === undefined ? '' : `:${resource.namespace}`;
  const id = resource.id === undefined ? '' : `/${resource.id}`;
  return `${resource.type}${ns}${id}`;
}

/** The authentication and authorization preHandlers of the main server. */
export interface AuthHooks {
  /** Authenticates once per request (memoised); undefined when no credentials were sent. */
  identify(request: FastifyRequest): Promise<Identity>;
  readonly authenticate: preHandlerAsyncHookHandler;
  requirePermission(
    action: Action,
    resource?: (request: FastifyRequest) => Resource,
  ): preHandlerAsyncHookHandler;
}

/** Builds the hooks; failures throw GatewayErrors that the error handler renders. */
export function createAuthHooks(deps: AuthDependencies): AuthHooks {
  const identities = new WeakMap<FastifyRequest, Promise<Identity>>();

  const identify = (request: FastifyRequest): Promise<Identity> => {
    let pending = identities.get(request);
    if (pending === undefined) {
      const credentials = credentialsOf(request, deps.clientCertificates);
      const repeated = repeatedCredential(request);
      pending =
        repeated !== undefined
          ? Promise.resolve(repeated)
          : credentials === undefined
            ? Promise.resolve(undefined)
            : deps.authenticator.authenticate(credentials).then(
                (principal) => ({ principal }),
                (error: unknown) => ({
                  error: isGatewayError(error)
                    ? error
                    : new GatewayError('GW_ERR_INTERNAL', { cause: error, message: 'Authentication failed' }),
                  credential: credentialMethod(credentials),
                }),
              );
      identities.set(request, pending);
    }
    return pending;
  };

  const deny = (
    request: FastifyRequest,
    principal: Principal,
    action: string,
    resource: string,
    reason: string,
  ) =>
    deps.audit?.record({
      actor: principal.id,
      action,
      resource,
      decision: 'deny',
      reason,
      requestId: request.id,
      clientIp: request.clientIp,
    });

  const authenticate: preHandlerAsyncHookHandler = async (request) => {
    if (request.principal !== undefined) return;
    const identity = await identify(request);
    if (identity === undefined) {
      throw new GatewayError('GW_ERR_AUTH_REQUIRED', {
        headers: { 'www-authenticate': 'Bearer realm="gatehouse"' },
      });
    }
    if ('error' in identity) {
      if (REFUSED_KINDS.has(identity.error.kind)) {
        await deps.failures?.record({
          clientIp: request.clientIp,
          requestId: request.id,
          resource: `route:${request.routeOptions.url ?? request.url}`,
          credential: identity.credential,
          error: identity.error,
        });
      }
      throw identity.error;
    }
    const { principal } = identity;
    if (principal.allowedCidrs !== undefined && !ipAllowed(request.clientIp, principal.allowedCidrs)) {
      const reason = `Address "${request.clientIp}" is outside the allow-list of "${principal.name}"`;
      await deny(
        request,
        principal,
        'http.request',
        `route:${request.routeOptions.url ?? request.url}`,
        reason,
      );
      throw new GatewayError('GW_ERR_AUTH_IP_NOT_ALLOWED', { message: reason });
    }
    // Roles outside their server.roleAllowedCidrs were dropped by authenticate (core/auth).
    request.principal = principal;
  };

  const requirePermission = (action: Action, resourceOf?: (request: FastifyRequest) => Resource) => {
    const type = action.split(':')[0] ?? action;
    const hook: preHandlerAsyncHookHandler = async function (this: unknown, request, reply) {
      await authenticate.call(this as never, request, reply);
      const principal = request.principal as Principal;
      const resource = resourceOf === undefined ? { type } : resourceOf(request);
      const decision = deps.authorize(principal, action, resource);
      if (!decision.allowed) {
        await deny(request, principal, action, resourceName(resource), decision.reason);
        throw new GatewayError('GW_ERR_RBAC_DENIED', {
          message: decision.reason,
          details: { action, resource: resourceName(resource) },
        });
      }
    };
    return hook;
  };

  return { identify, authenticate, requirePermission };
}
