/**
 * The door's own login for container clients when `registry.auth` is `required`. `docker login`,
 * podman and skopeo follow the distribution token flow: `/v2/` answers 401 with a Bearer
 * challenge, the client presents the user name and password given to `login` to the realm as
 * HTTP Basic, and sends the token it receives with every later request. Here the password is a
 * Gatehouse API key or access token (the user name is not checked, as with other registries'
 * token logins); the realm checks it with the core authenticator and hands it back as the token,
 * so every registry request is then authenticated and authorized by the core as usual (address
 * allow-lists and role restrictions included). The core itself never accepts Basic credentials.
 */
import type { CoreServices } from '#core/app';
import { GatewayError, toGatewayError } from '#core/errors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { audit, callerOf, publicBase, type RegistryContext } from '../context.ts';

/** Where clients fetch a token (below the main server's API, outside the guarded `/v2/`). */
export const OCI_TOKEN_PATH = '/api/registry/oci/token';
const SERVICE = 'gatehouse-registry';

/** The challenge sent with every 401 of `/v2/`: an absolute realm on this server. */
export const ociChallenge = (ctx: RegistryContext, request: FastifyRequest): string =>
  `Bearer realm="${publicBase(ctx, request).base}${OCI_TOKEN_PATH}",service="${SERVICE}"`;

/** The password of an HTTP Basic `Authorization`, or undefined when there is none. */
export function basicPassword(authorization: string | undefined): string | undefined {
  const m = authorization === undefined ? null : /^Basic[ ]+([A-Za-z0-9+/]+=*)\s*$/i.exec(authorization);
  if (m === null) return undefined;
  const decoded = Buffer.from(m[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const password = colon < 0 ? '' : decoded.slice(colon + 1);
  return password === '' || /\s/.test(password) ? undefined : password;
}

/** Registers the token realm (`GET`, as the distribution token spec asks). */
export function registerOciLogin(app: FastifyInstance, core: CoreServices, ctx: RegistryContext): void {
  app.get(OCI_TOKEN_PATH, async (request, reply) => {
    const caller = callerOf(request);
    const password = basicPassword(request.headers.authorization);
    try {
      if (password === undefined)
        throw new GatewayError('GW_ERR_AUTH_REQUIRED', {
          message: 'Log in with an API key or access token as the password',
        });
      const principal = await core.auth.authenticate({ clientIp: caller.clientIp, bearer: password });
      audit(ctx, {
        actor: principal.id,
        action: 'registry.login',
        resource: 'oci',
        decision: 'allow',
        clientIp: caller.clientIp,
        requestId: caller.requestId,
      });
      return reply.header('cache-control', 'no-store').send({
        token: password,
        access_token: password,
        issued_at: new Date(ctx.clock.now()).toISOString(),
      });
    } catch (error) {
      const e = toGatewayError(error);
      audit(ctx, {
        actor: 'anonymous',
        action: 'registry.login',
        resource: 'oci',
        decision: 'deny',
        reason: e.message,
        clientIp: caller.clientIp,
        requestId: caller.requestId,
      });
      const status = e.code === 'GW_ERR_INTERNAL' ? 500 : e.httpStatus;
      return reply
        .code(status === 403 ? 403 : status >= 500 ? status : 401)
        .header('www-authenticate', 'Basic realm="Gatehouse registry"')
        .type('application/json')
        .send({
          errors: [
            { code: 'UNAUTHORIZED', message: e.message, detail: { code: e.code, errorId: e.errorId } },
          ],
        });
    }
  });
}
