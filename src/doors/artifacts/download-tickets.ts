import { createHash, randomBytes } from 'node:crypto';
import { GatewayError } from '#core/errors';
import type { Principal } from '#core/rbac';
import type { ArtifactContext } from './context.ts';
import type { ArtifactTables } from './store/schema.ts';

/**
 * How long a download ticket lives. The console asks for one and submits it at once; a minute
 * covers a slow round trip and keeps a copied ticket nearly worthless.
 */
export const TICKET_TTL_MS = 60_000;

/** A ticket as handed to the caller; only its SHA-256 is stored. */
export interface DownloadTicket {
  readonly ticket: string;
  readonly expiresAt: number;
}

const hashOf = (ticket: string) => createHash('sha256').update(ticket).digest('hex');

/**
 * Issues a single-use ticket that lets a browser download one artifact by a form POST (the
 * ticket travels in the body, never in a URL, so it reaches no access log and no history). It
 * is bound to the artifact, the caller's principal (as authenticated now, role restrictions
 * applied) and the caller's address. The row is shared by every replica.
 */
export async function issueTicket(
  ctx: ArtifactContext,
  artifactId: string,
  principal: Principal,
  clientIp: string,
): Promise<DownloadTicket> {
  const ticket = randomBytes(32).toString('base64url');
  const expiresAt = ctx.clock.now() + TICKET_TTL_MS;
  await ctx.db
    .kysely<ArtifactTables>()
    .insertInto('artifacts_download_tickets')
    .values({
      hash: hashOf(ticket),
      artifact_id: artifactId,
      principal: JSON.stringify(principal),
      client_ip: clientIp,
      expires_at: expiresAt,
    })
    .execute();
  return { ticket, expiresAt };
}

function refused(message: string, expired = false): GatewayError {
  return new GatewayError(expired ? 'GW_ERR_AUTH_TOKEN_EXPIRED' : 'GW_ERR_AUTH_TOKEN_INVALID', {
    message,
    details: { credential: 'download ticket' },
  });
}

/**
 * Redeems a ticket: it is deleted in the same statement that proves it existed, so two requests
 * racing with one ticket cannot both win. Returns the principal it was issued to.
 */
export async function redeemTicket(
  ctx: ArtifactContext,
  ticket: string,
  artifactId: string,
  clientIp: string,
): Promise<Principal> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(ticket)) throw refused('Download ticket is malformed');
  const db = ctx.db.kysely<ArtifactTables>();
  const hash = hashOf(ticket);
  const row = await db
    .selectFrom('artifacts_download_tickets')
    .selectAll()
    .where('hash', '=', hash)
    .executeTakeFirst();
  const deleted =
    row === undefined
      ? 0
      : Number(
          (await db.deleteFrom('artifacts_download_tickets').where('hash', '=', hash).executeTakeFirst())
            .numDeletedRows,
        );
  if (row === undefined || deleted !== 1) throw refused('Download ticket is unknown or already used');
  if (Number(row.expires_at) <= ctx.clock.now()) throw refused('Download ticket has expired', true);
  if (row.artifact_id !== artifactId) throw refused('Download ticket is for another artifact');
  if (row.client_ip !== clientIp) throw refused('Download ticket was issued to another address');
  return JSON.parse(row.principal) as Principal;
}

/** Deletes tickets that expired unused (the sweep calls it). */
export async function purgeTickets(ctx: ArtifactContext): Promise<number> {
  const result = await ctx.db
    .kysely<ArtifactTables>()
    .deleteFrom('artifacts_download_tickets')
    .where('expires_at', '<=', ctx.clock.now())
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
