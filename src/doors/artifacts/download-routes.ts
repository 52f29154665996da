import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from '#core/errors';
import { attachmentDisposition } from '#core/http';
import type { Action, Principal } from '#core/rbac';
import { issueTicket, redeemTicket } from './download-tickets.ts';
import { etagListMatches, openPlaintext, parseRange } from './download.ts';
import {
  auditResource,
  itemGuards,
  itemOf,
  itemResource,
  loadItem,
  type RouteDeps,
  seenItemResource,
} from './routes.ts';
import type { ItemRow } from './store/schema.ts';
import { isMediaType } from './upload.ts';

const actorOf = (request: FastifyRequest) => request.principal?.id ?? 'anonymous';

/** Counts and audits one download of `item`: answered (its bytes, or 304) or refused (with why). */
async function recordDownload(
  deps: RouteDeps,
  request: FastifyRequest,
  item: ItemRow,
  outcome: {
    readonly result: 'ok' | 'not_modified' | 'denied' | 'precondition_failed' | 'integrity';
    readonly reason?: string;
    readonly details?: Record<string, unknown>;
  },
): Promise<void> {
  const { result, reason, details } = outcome;
  deps.ctx.metrics.downloads.inc({ result });
  await deps.ctx.audit({
    actor: actorOf(request),
    action: 'artifacts.download',
    resource: auditResource(item),
    decision:
      result === 'ok' || result === 'not_modified' ? 'allow' : result === 'integrity' ? 'error' : 'deny',
    ...(reason === undefined ? {} : { reason }),
    clientIp: request.clientIp,
    ...(details === undefined ? {} : { details }),
  });
}

/** Refuses, audited, a download the artifact's status or the trust policy does not allow. */
async function checkDownload(deps: RouteDeps, request: FastifyRequest, item: ItemRow): Promise<void> {
  const principal = request.principal;
  const deny = async (reason: string, error: GatewayError) => {
    await recordDownload(deps, request, item, { result: 'denied', reason });
    throw error;
  };
  if (item.status !== 'approved') {
    const may =
      principal !== undefined &&
      deps.core.authorize(principal, 'artifacts:download-unapproved', itemResource(request)).allowed;
    if (!may) {
      const reason =
        item.status === 'quarantined'
          ? 'Artifact is quarantined until its scan completes'
          : `Artifact is blocked: ${item.status_reason}`;
      await deny(
        reason,
        new GatewayError('GW_ERR_ARTIFACTS_NOT_APPROVED', {
          message: reason,
          details: { status: item.status },
        }),
      );
    }
  }
  const verdict = await deps.trust.check(item, actorOf(request));
  if (!verdict.trusted) {
    const reason = `Trust policy refuses the artifact: ${verdict.reasons.join('; ')}`;
    await deny(
      reason,
      new GatewayError('GW_ERR_ARTIFACTS_UNTRUSTED', {
        message: reason,
        details: { policyVersion: verdict.policyVersion },
      }),
    );
  }
}

async function* counted(
  first: Buffer,
  rest: AsyncGenerator<Buffer>,
  deps: RouteDeps,
  request: FastifyRequest,
  item: ItemRow,
): AsyncGenerator<Buffer> {
  try {
    deps.ctx.metrics.bytesOut.inc({}, first.length);
    yield first;
    for await (const chunk of rest) {
      deps.ctx.metrics.bytesOut.inc({}, chunk.length);
      yield chunk;
    }
  } catch (error) {
    await recordFailure(deps, request, item, error, 'mid-stream');
    throw error;
  }
}

/**
 * Counts, logs and audits a download that failed reading the stored artifact (tampered or
 * missing bytes, a key that does not unwrap): before its headers went out or mid-stream.
 */
async function recordFailure(
  deps: RouteDeps,
  request: FastifyRequest,
  item: ItemRow,
  error: unknown,
  when: 'at-start' | 'mid-stream',
): Promise<void> {
  deps.ctx.log.error(`artifact download failed ${when === 'at-start' ? 'before its first byte' : when}`, {
    error,
    artifactId: item.id,
  });
  await recordDownload(deps, request, item, {
    result: 'integrity',
    reason: error instanceof Error ? error.message : String(error),
  });
}

/**
 * Registers the download routes: `GET …/download` (bearer, API key or certificate; Range), the
 * browser's `POST …/download-tickets` and `POST …/download` with a single-use ticket in a form.
 */
export function registerDownloadRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { core, ctx } = deps;
  const pre = (action: Action) => itemGuards(core, ctx, action);
  app.get('/api/artifacts/:id/download', { preHandler: pre('artifacts:download') }, (request, reply) =>
    serveDownload(deps, request, reply),
  );
  app.post(
    '/api/artifacts/:id/download-tickets',
    { preHandler: pre('artifacts:download') },
    async (request, reply) => {
      const item = itemOf(request);
      // Refuse now, with a readable problem, what the download itself would refuse.
      await checkDownload(deps, request, item);
      const issued = await issueTicket(ctx, item.id, request.principal as Principal, request.clientIp);
      return reply
        .code(201)
        .header('cache-control', 'no-store')
        .send({
          ticket: issued.ticket,
          expiresAt: new Date(issued.expiresAt).toISOString(),
          method: 'POST',
          action: `/api/artifacts/${item.id}/download`,
          field: 'ticket',
        });
    },
  );
  void app.register(async (scope) => {
    // A browser form (application/x-www-form-urlencoded, HTML's form submission) carries the
    // ticket, so the browser itself streams the file to disk and the ticket is in no URL.
    scope.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: 1024 },
      (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(String(body)))),
    );
    scope.post(
      '/api/artifacts/:id/download',
      {
        preHandler: [
          loadItem(ctx),
          redeemFromForm(deps),
          core.http.requirePermission('artifacts:download', seenItemResource(core, 'artifacts:download')),
        ],
      },
      (request, reply) => serveDownload(deps, request, reply),
    );
  });
}

/** Authenticates a form POST by its download ticket; without one the usual credentials apply. */
function redeemFromForm(deps: RouteDeps) {
  return async (request: FastifyRequest): Promise<void> => {
    const body = request.body as Record<string, unknown> | undefined;
    const ticket = body?.['ticket'];
    if (typeof ticket !== 'string') return;
    const id = (request.params as { id?: string }).id ?? '';
    try {
      request.principal = await redeemTicket(deps.ctx, ticket, id, request.clientIp);
    } catch (error) {
      deps.ctx.metrics.downloads.inc({ result: 'denied' });
      await deps.ctx.audit({
        actor: 'anonymous',
        action: 'artifacts.download',
        resource: `artifact:${id}`,
        decision: 'deny',
        reason: error instanceof Error ? error.message : String(error),
        clientIp: request.clientIp,
      });
      throw error;
    }
  };
}

/**
 * Counts and audits a download refused by its own precondition (412: the client asked for a
 * version it does not name), then returns the error to throw.
 */
async function preconditionFailed(
  deps: RouteDeps,
  request: FastifyRequest,
  item: ItemRow,
  field: 'if-match' | 'if-none-match',
  message: string,
  etag: string,
): Promise<GatewayError> {
  await recordDownload(deps, request, item, {
    result: 'precondition_failed',
    reason: message,
    details: { precondition: field },
  });
  return new GatewayError('GW_ERR_ARTIFACTS_PRECONDITION_FAILED', { message, headers: { etag } });
}

async function serveDownload(deps: RouteDeps, request: FastifyRequest, reply: FastifyReply) {
  const { ctx } = deps;
  const item = itemOf(request);
  await checkDownload(deps, request, item);
  const size = Number(item.size);
  const etag = `"sha256:${item.digest}"`;
  // RFC 9110 §13.1.1: an If-Match that names no current representation (strong comparison; `*`
  // matches any) fails with 412: the client wanted a download of the version it knows only.
  const ifMatch = request.headers['if-match'];
  if (ifMatch !== undefined && !etagListMatches(ifMatch, etag, 'strong')) {
    const message = `If-Match "${ifMatch.slice(0, 200)}" does not name this artifact's ETag ${etag}`;
    throw await preconditionFailed(deps, request, item, 'if-match', message, etag);
  }
  // RFC 9110 §13.1.2, evaluated once the download itself is allowed (§13.2.1) and before any
  // Range: a GET or HEAD whose If-None-Match names this ETag (weak comparison, or `*`) answers
  // 304 with the ETag and no body; the client's copy is this artifact. On another method (the
  // ticket download's POST) a match is a failed precondition.
  const ifNoneMatch = request.headers['if-none-match'];
  if (ifNoneMatch !== undefined && etagListMatches(ifNoneMatch, etag, 'weak')) {
    if (request.method === 'POST') {
      const message = `If-None-Match "${ifNoneMatch.slice(0, 200)}" names this artifact's ETag ${etag}`;
      throw await preconditionFailed(deps, request, item, 'if-none-match', message, etag);
    }
    await recordDownload(deps, request, item, { result: 'not_modified', details: { notModified: true } });
    return reply.code(304).header('etag', etag).header('x-checksum-sha256', item.digest).send();
  }
  // RFC 9110 §13.1.5: a Range under an If-Range that is not this ETag (strong comparison; a
  // date never matches, there is no Last-Modified) must be ignored and the whole body sent, or
  // a client resuming another file would splice foreign bytes into it.
  const ifRange = request.headers['if-range'];
  const range =
    ifRange === undefined || (typeof ifRange === 'string' && ifRange.trim() === etag)
      ? parseRange(request.headers.range, size)
      : undefined;
  // A HEAD (build tools ask one before each GET) gets the download's headers only: nothing is
  // read or decrypted, and it is no download to audit or count.
  const head = request.method === 'HEAD';
  // Pull the first chunk before the headers go out, so a blob that fails at once answers with an
  // error document. An empty artifact is read to its end here: its header and tag are verified
  // and its file closed (a generator never started could not close it).
  let source: AsyncGenerator<Buffer> | undefined;
  let first: IteratorResult<Buffer> | undefined;
  try {
    source = head ? undefined : await openPlaintext(ctx, item, range);
    first = await source?.next();
  } catch (error) {
    await recordFailure(deps, request, item, error, 'at-start');
    throw error;
  }
  reply
    // One stored before uploads checked it would fail the response as a header: served as bytes.
    .header('content-type', isMediaType(item.media_type) ? item.media_type : 'application/octet-stream')
    .header('content-disposition', attachmentDisposition(item.file_name))
    .header('accept-ranges', 'bytes')
    .header('etag', etag)
    .header('x-checksum-sha256', item.digest);
  if (range !== undefined) {
    reply
      .code(206)
      .header('content-range', `bytes ${range.start}-${range.end}/${size}`)
      .header('content-length', String(range.end - range.start + 1));
  } else {
    reply
      .header('content-length', String(size))
      .header('repr-digest', `sha-256=:${Buffer.from(item.digest, 'hex').toString('base64')}:`);
  }
  // An empty stream keeps the Content-Length set above (an empty payload would set it to 0).
  if (source === undefined || first === undefined) return reply.send(Readable.from([]));
  await recordDownload(deps, request, item, {
    result: 'ok',
    details: {
      range: range === undefined ? null : `${range.start}-${range.end}`,
      ...(request.method === 'POST' ? { via: 'ticket' } : {}),
    },
  });
  if (first.done === true) return reply.send(Buffer.alloc(0));
  return reply.send(Readable.from(counted(first.value, source, deps, request, item), { objectMode: false }));
}
