import { GatewayError } from '#core/errors';
import type { FastifyReply } from 'fastify';
import { headerText, prepareError, type RegistryContext } from '../context.ts';
import type { UplinkClient } from '../uplink/client.ts';

/** What Gatehouse asks PyPI uplinks for: PEP 691 JSON first, PEP 503 HTML otherwise. */
export const UPSTREAM_ACCEPT =
  'application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1';

/** Sends an error the way pip displays it. */
export function sendPypiError(ctx: RegistryContext, reply: FastifyReply, error: unknown): FastifyReply {
  const e = prepareError(ctx, reply.request, reply, error);
  // pip prints the HTTP/1.1 reason phrase ("403 Client Error: <reason> for url: …") but not the
  // body, so the refusal reason goes into the status line as well as a plain-text body.
  if (reply.request.raw.httpVersionMajor === 1) reply.raw.statusMessage = headerText(e.message).slice(0, 400);
  return reply
    .code(e.code === 'GW_ERR_INTERNAL' ? 500 : e.httpStatus)
    .type('text/plain; charset=utf-8')
    .send(`${e.message}\n(code ${e.code}, error id ${e.errorId})\n`);
}

/** Maps an upstream status other than 200 to the registry's error codes. */
export async function upstreamStatus(
  res: { status: number; body: { dump(): Promise<void> } },
  what: string,
  uplink: UplinkClient,
) {
  if (res.status === 200) return;
  await res.body.dump();
  if (res.status === 404)
    throw new GatewayError('GW_ERR_REGISTRY_NOT_FOUND', {
      message: `Project "${what}" was not found on uplink "${uplink.name}"`,
    });
  throw new GatewayError('GW_ERR_REGISTRY_UPLINK_UNAVAILABLE', {
    message: `Cannot fetch "${what}" from uplink "${uplink.name}": status ${res.status}`,
    details: { uplink: uplink.name, status: res.status },
  });
}

/** The JSON API URL of a project on an uplink. */
export const jsonUrlOf = (u: UplinkClient, project: string) => {
  const base = u.config.jsonUrl ?? u.config.url.replace(/\/simple\/?$/, '/pypi');
  return `${base.replace(/\/+$/, '')}/${project}/json`;
};
