/**
 * Upstream fetches of the part-2 ecosystems (Go, Maven, OCI): one place that turns upstream
 * statuses into the door's errors, so every handler answers a 404, a 429 and a 5xx the same way.
 */
import { GatewayError } from '#core/errors';
import type { FastifyReply } from 'fastify';
import { headerText, prepareError, readBody, type RegistryContext } from '../context.ts';
import type { UplinkClient, UplinkResponse } from '../uplink/client.ts';

/** Throws the door's error for a non-2xx upstream status (after discarding the body). */
export async function upstreamFailure(
  res: UplinkResponse,
  uplink: UplinkClient,
  what: string,
): Promise<never> {
  await res.body.dump().catch(() => undefined);
  if (res.status === 404 || res.status === 410)
    throw new GatewayError('GW_ERR_REGISTRY_NOT_FOUND', {
      message: `"${what}" was not found on uplink "${uplink.name}"`,
      details: { uplink: uplink.name, status: res.status },
    });
  if (res.status === 429) {
    const retry = Number(res.headers['retry-after']);
    const seconds = Number.isFinite(retry) && retry >= 0 ? Math.min(Math.ceil(retry), 3600) : 60;
    throw new GatewayError('GW_ERR_REGISTRY_UPLINK_RATE_LIMITED', {
      message: `Cannot fetch "${what}" from uplink "${uplink.name}": rate limited, retry in ${seconds}s`,
      details: { uplink: uplink.name, retryAfterSeconds: seconds },
      headers: { 'retry-after': String(seconds) },
    });
  }
  if (res.status === 401 || res.status === 403)
    throw new GatewayError('GW_ERR_REGISTRY_UPLINK_AUTH', {
      message: `Uplink "${uplink.name}" refused the credentials for "${what}": status ${res.status}`,
      details: { uplink: uplink.name, status: res.status },
    });
  throw new GatewayError('GW_ERR_REGISTRY_UPLINK_UNAVAILABLE', {
    message: `Cannot fetch "${what}" from uplink "${uplink.name}": status ${res.status}`,
    details: { uplink: uplink.name, status: res.status },
  });
}

/** GETs a small upstream document (metadata, `.info`, `.mod`, POM) up to `limit` bytes. */
export async function fetchSmall(
  uplink: UplinkClient,
  url: string,
  what: string,
  limit: number,
  headers?: Readonly<Record<string, string>>,
): Promise<{ readonly body: Buffer; readonly headers: UplinkResponse['headers'] }> {
  const res = await uplink.request({ url, what, ...(headers === undefined ? {} : { headers }) });
  if (res.status !== 200) return upstreamFailure(res, uplink, what);
  return { body: await readBody(res, limit, what), headers: res.headers };
}

/**
 * Sends an error as plain text, the form the go command (`server response: …`) and mvn (the
 * reason phrase, with `reasonPhrase`) show their users.
 */
export function sendTextError(
  ctx: RegistryContext,
  reply: FastifyReply,
  error: unknown,
  options: { readonly reasonPhrase: boolean },
): FastifyReply {
  const e = prepareError(ctx, reply.request, reply, error);
  if (options.reasonPhrase && reply.request.raw.httpVersionMajor === 1)
    reply.raw.statusMessage = headerText(e.message).slice(0, 400);
  return reply
    .code(e.code === 'GW_ERR_INTERNAL' ? 500 : e.httpStatus)
    .header('cache-control', 'no-store')
    .type('text/plain; charset=utf-8')
    .send(`${e.message} (code ${e.code}, error id ${e.errorId})\n`);
}
