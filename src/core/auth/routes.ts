import type { FastifyInstance, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { AuditInput, AuditLog } from '#core/audit';
import { GatewayError, isGatewayError } from '#core/errors';
import {
  type Action,
  ACTIONS,
  type Principal,
  type Resource,
  ROLE_PERMISSIONS,
  ROLES,
  type RoleBinding,
} from '#core/rbac';
import {
  KEY_BODY,
  LOGIN_BODY,
  LOGOUT_BODY,
  PASSWORD_BODY,
  REFRESH_BODY,
  SUBJECT_BINDING,
  USER_CREATE,
  USER_PATCH,
  ID_PARAMS,
} from './route-schemas.ts';
import { addressGroup } from './cidr.ts';
import type { AuthService } from './service.ts';

/**
 * The part of core/http's `HttpServer` these routes use. Structural, because core/http imports
 * core/auth (the Authenticator port) and a type import back would close a cycle.
 */
export interface HttpServer {
  readonly app: FastifyInstance;
  readonly authenticate: preHandlerAsyncHookHandler;
  requirePermission(
    action: Action,
    resource?: (request: FastifyRequest) => Resource,
  ): preHandlerAsyncHookHandler;
}

type Audit = Omit<AuditInput, 'requestId' | 'clientIp'>;

function recorder(audit: AuditLog | undefined) {
  // `record` never throws into the request path (AuditLog contract); awaiting it means the event
  // is stored before the client sees the outcome.
  return async (request: FastifyRequest, event: Audit): Promise<void> => {
    await audit?.record({ ...event, requestId: String(request.id), clientIp: request.clientIp });
  };
}

const actorOf = (request: FastifyRequest) => request.principal?.id ?? 'anonymous';
const idOf = (request: FastifyRequest) => (request.params as { id: string }).id;
const who = (request: FastifyRequest) => request.principal as Principal;

/** `POST /api/auth/login|refresh|logout` and `GET /.well-known/jwks.json`. */
function registerSessionRoutes(
  http: HttpServer,
  auth: AuthService,
  record: ReturnType<typeof recorder>,
): void {
  http.app.post('/api/auth/login', { schema: { body: LOGIN_BODY } }, async (request, reply) => {
    const { username, password } = request.body as { username: string; password: string };
    // Per address group, like the lockout: an IPv6 host holding a whole /64 cannot rotate past it.
    const limit = await auth.loginLimiter.take(`login:${addressGroup(request.clientIp)}`);
    if (!limit.allowed) {
      const seconds = Math.max(1, Math.ceil(limit.retryAfterMs / 1000));
      await record(request, {
        actor: 'anonymous',
        action: 'auth.login',
        resource: `user:${username}`,
        decision: 'deny',
        reason: 'rate limited',
      });
      throw new GatewayError('GW_ERR_RATE_LIMITED', {
        message: `Too many login attempts from this address; retry in ${seconds} s`,
        headers: { 'retry-after': String(seconds) },
      });
    }
    try {
      const result = await auth.login(username, password, request.clientIp);
      await record(request, {
        actor: `user:${result.userId}`,
        action: 'auth.login',
        resource: `user:${username}`,
        decision: 'allow',
      });
      void reply.header('cache-control', 'no-store');
      return {
        accessToken: result.accessToken,
        refreshToken: result.refreshToken,
        expiresIn: result.expiresIn,
        tokenType: result.tokenType,
      };
    } catch (error) {
      const reason = isGatewayError(error) ? error.code : 'error';
      await record(request, {
        actor: 'anonymous',
        action: 'auth.login',
        resource: `user:${username}`,
        decision: 'deny',
        reason,
      });
      throw error;
    }
  });

  http.app.post('/api/auth/refresh', { schema: { body: REFRESH_BODY } }, async (request, reply) => {
    const { refreshToken } = request.body as { refreshToken: string };
    try {
      const pair = await auth.refresh(refreshToken);
      void reply.header('cache-control', 'no-store');
      return pair;
    } catch (error) {
      if (isGatewayError(error) && error.details['reuseDetected'] === true) {
        await record(request, {
          actor: 'anonymous',
          action: 'auth.refresh.reuse',
          resource: 'session',
          decision: 'deny',
          reason: 'A spent refresh token was presented; its whole family was revoked',
        });
      }
      throw error;
    }
  });

  http.app.post('/api/auth/logout', { schema: { body: LOGOUT_BODY } }, async (request, reply) => {
    const body = (request.body ?? {}) as { refreshToken?: string };
    if (body.refreshToken !== undefined) {
      const family = await auth.logout(body.refreshToken);
      await record(request, {
        actor: `user:${family.userId}`,
        action: 'auth.logout',
        resource: 'session',
        decision: 'info',
      });
    } else {
      await http.authenticate.call(http.app, request, reply);
      await auth.logoutPrincipal(request.principal as Principal);
      await record(request, {
        actor: actorOf(request),
        action: 'auth.logout',
        resource: 'session',
        decision: 'info',
      });
    }
    return reply.code(204).send();
  });

  // Who the caller is and what it may do; the CLI's `whoami` and the console read this.
  http.app.get('/api/auth/me', { preHandler: http.authenticate }, (request) => {
    const p = who(request);
    return {
      id: p.id,
      kind: p.kind,
      name: p.name,
      bindings: p.bindings,
      ...(p.expiresAt === undefined ? {} : { expiresAt: new Date(p.expiresAt).toISOString() }),
    };
  });

  http.app.get('/.well-known/jwks.json', async (_request, reply) => {
    void reply.header('cache-control', 'public, max-age=300');
    return auth.jwks();
  });
}

/** `/api/users` CRUD (admin) and password changes. */
function registerUserRoutes(http: HttpServer, auth: AuthService, record: ReturnType<typeof recorder>): void {
  const canRead = http.requirePermission('users:read', () => ({ type: 'user' }));
  const canWrite = http.requirePermission('users:write', () => ({ type: 'user' }));

  http.app.get('/api/users', { preHandler: canRead }, async () => ({ users: await auth.users.list() }));
  http.app.post(
    '/api/users',
    { preHandler: canWrite, schema: { body: USER_CREATE } },
    async (request, reply) => {
      const body = request.body as {
        username: string;
        password: string;
        roles?: RoleBinding[];
        disabled?: boolean;
      };
      const user = await auth.users.create(body, actorOf(request));
      await record(request, {
        actor: actorOf(request),
        action: 'user.create',
        resource: `user:${user.username}`,
        decision: 'allow',
        details: { roles: user.roles },
      });
      return reply.code(201).send(user);
    },
  );
  http.app.get('/api/users/:id', { preHandler: canRead, schema: { params: ID_PARAMS } }, async (request) =>
    auth.users.get(idOf(request)),
  );
  http.app.patch(
    '/api/users/:id',
    { preHandler: canWrite, schema: { params: ID_PARAMS, body: USER_PATCH } },
    async (request) => {
      const user = await auth.users.update(
        idOf(request),
        request.body as { roles?: RoleBinding[]; disabled?: boolean },
        actorOf(request),
      );
      await record(request, {
        actor: actorOf(request),
        action: 'user.update',
        resource: `user:${user.username}`,
        decision: 'allow',
        details: { roles: user.roles, disabled: user.disabled },
      });
      return user;
    },
  );
  http.app.delete(
    '/api/users/:id',
    { preHandler: canWrite, schema: { params: ID_PARAMS } },
    async (request, reply) => {
      await auth.users.delete(idOf(request));
      await record(request, {
        actor: actorOf(request),
        action: 'user.delete',
        resource: `user:${idOf(request)}`,
        decision: 'allow',
      });
      return reply.code(204).send();
    },
  );
  // What `gatehouse users unlock` does on the database, through the server: audited.
  http.app.post(
    '/api/users/:id/unlock',
    { preHandler: canWrite, schema: { params: ID_PARAMS } },
    async (request) => {
      const result = await auth.unlock(idOf(request));
      await record(request, {
        actor: actorOf(request),
        action: 'user.unlock',
        resource: `user:${result.username}`,
        decision: 'allow',
        details: { addresses: result.addresses, accountBackoff: result.accountBackoff },
      });
      return result;
    },
  );
  http.app.put(
    '/api/users/:id/password',
    { preHandler: http.authenticate, schema: { params: ID_PARAMS, body: PASSWORD_BODY } },
    async (request, reply) => {
      const { password, currentPassword } = request.body as { password: string; currentPassword?: string };
      const principal = request.principal as Principal;
      const id = idOf(request);
      const admin = http.requirePermission('users:write', () => ({ type: 'user' }));
      // Only a caller naming its own account gets past this point without users:write; anyone
      // else would learn from 404 versus 403 which accounts exist.
      const claimsSelf =
        principal.kind === 'user' &&
        currentPassword !== undefined &&
        (principal.id === `user:${id}` || principal.name === id);
      if (!claimsSelf) await admin.call(http.app, request, reply);
      const target = await auth.users.get(id);
      if (claimsSelf && principal.id !== `user:${target.id}`) await admin.call(http.app, request, reply);
      else if (claimsSelf) {
        // Re-authentication proves the caller knows the current password (a stolen access token does not).
        try {
          await auth.checkPassword(target.username, currentPassword, request.clientIp);
        } catch (error) {
          await record(request, {
            actor: actorOf(request),
            action: 'user.password',
            resource: `user:${target.username}`,
            decision: 'deny',
            reason: isGatewayError(error) ? error.code : 'error',
          });
          throw error;
        }
      }
      await auth.users.setPassword(target.id, password);
      await record(request, {
        actor: actorOf(request),
        action: 'user.password',
        resource: `user:${target.username}`,
        decision: 'allow',
      });
      return reply.code(204).send();
    },
  );
}

/** `GET /api/roles` and the role-binding endpoints. */
function registerRoleRoutes(http: HttpServer, auth: AuthService, record: ReturnType<typeof recorder>): void {
  const canBind = http.requirePermission('bindings:write', () => ({ type: 'binding' }));
  http.app.get(
    '/api/roles',
    { preHandler: http.requirePermission('roles:read', () => ({ type: 'role' })) },
    async () => ({
      roles: ROLES.map((role) => ({ role, actions: ACTIONS.filter((a) => ROLE_PERMISSIONS[role].has(a)) })),
    }),
  );
  http.app.get(
    '/api/role-bindings',
    { preHandler: http.requirePermission('users:read', () => ({ type: 'binding' })) },
    async (request) => {
      const subject = (request.query as { subject?: string }).subject;
      return { bindings: await auth.bindings.list(subject) };
    },
  );
  http.app.post(
    '/api/role-bindings',
    { preHandler: canBind, schema: { body: SUBJECT_BINDING } },
    async (request, reply) => {
      const { subject, role, namespace } = request.body as { subject: string } & RoleBinding;
      const created = await auth.bindings.grant(subject, { role, namespace }, actorOf(request));
      await record(request, {
        actor: actorOf(request),
        action: 'binding.grant',
        resource: subject,
        decision: 'allow',
        details: { role, namespace },
      });
      return reply.code(created ? 201 : 200).send({ subject, role, namespace });
    },
  );
  http.app.delete(
    '/api/role-bindings',
    { preHandler: canBind, schema: { body: SUBJECT_BINDING } },
    async (request, reply) => {
      const { subject, role, namespace } = request.body as { subject: string } & RoleBinding;
      if (!(await auth.bindings.revoke(subject, { role, namespace }))) {
        throw new GatewayError('GW_ERR_REQUEST_INVALID', {
          message: `No stored binding of "${subject}" to "${role}" in "${namespace}"`,
        });
      }
      await record(request, {
        actor: actorOf(request),
        action: 'binding.revoke',
        resource: subject,
        decision: 'allow',
        details: { role, namespace },
      });
      return reply.code(204).send();
    },
  );
}

/** `/api/keys`: any authenticated principal manages its own keys; admins manage all. */
function registerKeyRoutes(http: HttpServer, auth: AuthService, record: ReturnType<typeof recorder>): void {
  http.app.get('/api/keys', { preHandler: http.authenticate }, async (request) => ({
    keys: await auth.keys.list(who(request)),
  }));
  http.app.post(
    '/api/keys',
    { preHandler: http.authenticate, schema: { body: KEY_BODY } },
    async (request, reply) => {
      const body = request.body as {
        name: string;
        bindings: RoleBinding[];
        expiresAt?: string;
        allowedCidrs?: string[];
      };
      const expiresAt = body.expiresAt === undefined ? undefined : Date.parse(body.expiresAt);
      if (expiresAt !== undefined && Number.isNaN(expiresAt)) {
        throw new GatewayError('GW_ERR_REQUEST_INVALID', {
          message: `Invalid expiry "${body.expiresAt}"`,
          details: { errors: [{ field: 'expiresAt', expected: 'an ISO 8601 time' }] },
        });
      }
      const created = await auth.keys.create(who(request), {
        name: body.name,
        bindings: body.bindings,
        ...(expiresAt === undefined ? {} : { expiresAt }),
        ...(body.allowedCidrs === undefined ? {} : { allowedCidrs: body.allowedCidrs }),
      });
      await record(request, {
        actor: actorOf(request),
        action: 'key.create',
        resource: `key:${created.key.id}`,
        decision: 'allow',
        details: { bindings: created.key.bindings },
      });
      void reply.header('cache-control', 'no-store');
      return reply.code(201).send({ ...created.key, secret: created.secret });
    },
  );
  http.app.get(
    '/api/keys/:id',
    { preHandler: http.authenticate, schema: { params: ID_PARAMS } },
    async (request) => auth.keys.get(who(request), idOf(request)),
  );
  http.app.delete(
    '/api/keys/:id',
    { preHandler: http.authenticate, schema: { params: ID_PARAMS } },
    async (request, reply) => {
      await auth.keys.revoke(who(request), idOf(request));
      await record(request, {
        actor: actorOf(request),
        action: 'key.revoke',
        resource: `key:${idOf(request)}`,
        decision: 'allow',
      });
      return reply.code(204).send();
    },
  );
}

/**
 * Registers the identity API on the main server: login/refresh/logout (login rate-limited per
 * client address), users (admin), roles and role bindings, API keys and the public JWKS.
 * Security-relevant outcomes go to `audit` when given.
 */
export function registerAuthRoutes(http: HttpServer, auth: AuthService, audit?: AuditLog): void {
  const record = recorder(audit);
  registerSessionRoutes(http, auth, record);
  registerUserRoutes(http, auth, record);
  registerRoleRoutes(http, auth, record);
  registerKeyRoutes(http, auth, record);
}
