import { Readable } from 'node:stream';
import { constants, createBrotliCompress, createGunzip, createGzip } from 'node:zlib';
import type { Clock, CoreServices } from '#core/app';
import type { AuditInput } from '#core/audit';
import { GatewayError, isGatewayError } from '#core/errors';
import { classifyHttpError } from '#core/http';
import type { Logger } from '#core/log';
import type { Ecosystem, PolicyDecision, PolicyService, PolicySubject } from '#core/policy';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { BlobCache } from './cache/blob-cache.ts';
import { chooseEncoding, lacksIdentity, type MetadataEntry } from './cache/entry.ts';
import type { MetadataCache } from './cache/metadata-cache.ts';
import type { RegistryConfig } from './config.ts';
import type { RegistryMetrics } from './metrics.ts';
import type { UplinkResponse } from './uplink/client.ts';

/** A header-safe, single-line, bounded text (npm prints `npm-notice` verbatim). */
export const headerText = (text: string): string =>
  text
    .replace(/[^\x20-\x7e]/g, ' ')
    .replace(/\s+/g, ' ')
    .slice(0, 1000);

/** Who asked, for audit events. */
export interface Caller {
  readonly actor: string;
  readonly clientIp: string;
  readonly requestId: string;
}

export const callerOf = (request: FastifyRequest): Caller => ({
  actor: request.principal?.id ?? 'anonymous',
  clientIp: request.clientIp || request.ip,
  requestId: String(request.id),
});

/** Everything the ecosystem handlers share. */
export interface RegistryContext {
  readonly core: CoreServices;
  readonly log: Logger;
  readonly clock: Clock;
  readonly config: () => RegistryConfig;
  readonly policy: PolicyService;
  readonly metrics: RegistryMetrics;
  readonly metadata: MetadataCache;
  readonly blobs: BlobCache;
}

/** Records an audit event without letting its failure reach the request. */
export function audit(ctx: RegistryContext, input: AuditInput): void {
  ctx.core.audit.record(input).catch((error: unknown) => ctx.log.warn('Audit record failed', { error }));
}

/** An uplink that failed a request (429, refused credentials, 5xx, timeout, open breaker). */
export const isUplinkFailure = (error: unknown): error is GatewayError =>
  isGatewayError(error) && error.code.startsWith('GW_ERR_REGISTRY_UPLINK_');

/** The `Warning` of metadata served stale (RFC 7234 §5.5.1 warn-code 110). */
export const staleWarning = (uplink: string): string =>
  `110 gatehouse "Response is stale: uplink ${uplink} unavailable"`;

/**
 * What every ecosystem's error sender does first: turns the error into the door's error, logs an
 * internal one, copies its headers (`Retry-After`, …) and audits a failed uplink (429, refused
 * credentials, 5xx, timeouts, an open breaker), which never reaches any cache.
 */
export function prepareError(
  ctx: RegistryContext,
  request: FastifyRequest,
  reply: FastifyReply,
  error: unknown,
): GatewayError {
  // Fastify's own errors (a body that is not JSON, too large, a bad Content-Length) are the
  // client's: 4xx with a fixed sentence, not an internal error.
  const e = classifyHttpError(error);
  if (e.code === 'GW_ERR_INTERNAL') ctx.log.error('Registry request failed', { errorId: e.errorId, error });
  for (const [k, v] of Object.entries(e.headers)) reply.header(k, v);
  if (isUplinkFailure(e)) {
    const caller = callerOf(request);
    audit(ctx, {
      actor: caller.actor,
      action: 'registry.upstream.error',
      resource: `path:${request.url.split('?')[0] ?? ''}`,
      decision: 'error',
      reason: e.message,
      clientIp: caller.clientIp,
      requestId: caller.requestId,
      details: { code: e.code, errorId: e.errorId, ...e.details },
    });
  }
  return e;
}

const MAX_AUDITED_REFUSALS = 200;

/**
 * Evaluates the policy for many versions of one package, counts every rule result and audits:
 * each refused version gets its own event with every rule's result; the allowed rest of a
 * metadata request is summarized in one event (a packument can list thousands of versions).
 */
export async function decideMany(
  ctx: RegistryContext,
  subjects: readonly PolicySubject[],
  caller: Caller,
  options: { readonly now: number; readonly registry: string; readonly kind: 'metadata' | 'file' },
): Promise<PolicyDecision[]> {
  const engine = ctx.policy.current();
  const decisions = await engine.evaluateMany(subjects, { now: options.now });
  let refusedAudited = 0;
  // Counted per rule and outcome first: a packument can mean thousands of results.
  const counts = new Map<string, { rule: string; outcome: string; n: number }>();
  for (const d of decisions) {
    for (const r of d.results) {
      const key = `${r.ruleId}\u0000${r.outcome}`;
      const c = counts.get(key);
      if (c === undefined) counts.set(key, { rule: r.ruleId, outcome: r.outcome, n: 1 });
      else c.n += 1;
    }
    if (options.kind === 'file' || (!d.allowed && refusedAudited++ < MAX_AUDITED_REFUSALS)) {
      audit(ctx, decisionEvent(d, caller, options.registry));
    }
  }
  for (const c of counts.values()) {
    ctx.metrics.decisions.inc({ registry: options.registry, rule: c.rule, outcome: c.outcome }, c.n);
  }
  if (options.kind === 'metadata' && subjects.length > 0) {
    const first = subjects[0] as PolicySubject;
    const refused = decisions.filter((d) => !d.allowed);
    audit(ctx, {
      actor: caller.actor,
      action: 'registry.metadata',
      resource: `${first.ecosystem}:${first.name}`,
      decision: 'info',
      reason: `${decisions.length - refused.length} of ${decisions.length} versions served`,
      clientIp: caller.clientIp,
      requestId: caller.requestId,
      details: {
        registry: options.registry,
        policyVersion: engine.version,
        refused: refused.slice(0, MAX_AUDITED_REFUSALS).map((d) => d.subject.version),
        databaseUpdatedAt: decisions.find((d) => d.databaseUpdatedAt !== undefined)?.databaseUpdatedAt,
      },
    });
  }
  return decisions;
}

function decisionEvent(d: PolicyDecision, caller: Caller, registry: string): AuditInput {
  return {
    actor: caller.actor,
    action: 'registry.decision',
    resource: `${d.subject.ecosystem}:${d.subject.name}@${d.subject.version}`,
    decision: d.allowed ? 'allow' : 'deny',
    reason: d.reason,
    clientIp: caller.clientIp,
    requestId: caller.requestId,
    details: {
      registry,
      policyVersion: d.policyVersion,
      rules: d.results.map((r) => ({
        id: r.ruleId,
        outcome: r.outcome,
        reason: r.reason,
        ...(r.error === undefined ? {} : { error: r.error }),
      })),
      ...(d.allowAt === undefined ? {} : { allowAt: new Date(d.allowAt).toISOString() }),
      ...(d.databaseUpdatedAt === undefined
        ? {}
        : { vulndbUpdatedAt: new Date(d.databaseUpdatedAt).toISOString() }),
    },
  };
}

/** Decides one version (a file request, or version metadata) and throws its refusal. */
export async function requireAllowed(
  ctx: RegistryContext,
  subject: PolicySubject,
  caller: Caller,
  options: { readonly now: number; readonly registry: string; readonly kind: 'metadata' | 'file' },
): Promise<void> {
  const [decision] = await decideMany(ctx, [subject], caller, options);
  if (decision === undefined || !decision.allowed) throw deniedError(decision as PolicyDecision);
}

/** A GatewayError for a refused version, with the reason and (for age) when it will be allowed. */
export function deniedError(d: PolicyDecision): GatewayError {
  return new GatewayError('GW_ERR_POLICY_DENIED', {
    message: `Gatehouse refused "${d.subject.name}@${d.subject.version}": ${d.reason}`,
    details: {
      ecosystem: d.subject.ecosystem as Ecosystem,
      rules: d.results.filter((r) => r.outcome === 'deny').map((r) => r.ruleId),
      ...(d.allowAt === undefined ? {} : { allowAt: new Date(d.allowAt).toISOString() }),
    },
  });
}

/** The external base URL for rewritten links, and the cache-key part it implies. */
export function publicBase(ctx: RegistryContext, request: FastifyRequest): { base: string; hostKey: string } {
  const configured = ctx.config().publicUrl;
  if (configured !== undefined) return { base: configured.replace(/\/+$/, ''), hostKey: '' };
  const host = request.host.replace(/[^A-Za-z0-9.:[\]-]/g, '');
  return { base: `${request.protocol}://${host}`, hostKey: `${request.protocol}://${host}` };
}

/**
 * Checks an upstream body's declared length against `limit` (aborting it when larger) and
 * returns the error to throw should the bytes exceed it anyway.
 */
export function bodyLimit(
  res: UplinkResponse,
  limit: number,
  what: string,
): { declared?: number; tooLarge: () => GatewayError } {
  const declared = Number(res.headers['content-length']);
  const tooLarge = () =>
    new GatewayError('GW_ERR_REGISTRY_UPSTREAM_TOO_LARGE', {
      message: `Upstream metadata for "${what}" exceeds ${limit} bytes`,
      details: { limit },
    });
  if (Number.isFinite(declared) && declared > limit) {
    res.body.destroy();
    throw tooLarge();
  }
  return { ...(Number.isFinite(declared) ? { declared } : {}), tooLarge };
}

/** Reads an upstream body up to `limit` bytes; beyond it the transfer is aborted. */
export async function readBody(res: UplinkResponse, limit: number, what: string): Promise<Buffer> {
  const { tooLarge } = bodyLimit(res, limit, what);
  const parts: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of res.body) {
      total += (chunk as Buffer).length;
      if (total > limit) {
        res.body.destroy();
        throw tooLarge();
      }
      parts.push(chunk as Buffer);
    }
  } catch (error) {
    if (error instanceof GatewayError) throw error;
    throw new GatewayError('GW_ERR_REGISTRY_UPLINK_UNAVAILABLE', {
      message: `Cannot fetch "${what}": the upstream body was cut off`,
      cause: error,
    });
  }
  return Buffer.concat(parts, total);
}

/** Brotli made while sending: the fastest quality, like gzip level 1 for on-the-fly gzip. */
const FAST_BROTLI = { params: { [constants.BROTLI_PARAM_QUALITY]: 1 } };

/**
 * Sends cached metadata bytes: 304 when `If-None-Match` names the entry, otherwise the
 * pre-compressed encoding the client accepts; a stale entry carries a `Warning` header.
 */
export function sendEntry(
  request: FastifyRequest,
  reply: FastifyReply,
  entry: MetadataEntry,
  options: { readonly stale?: boolean; readonly policyVersion: string; readonly noStore?: boolean },
): FastifyReply {
  const accept = request.headers['accept-encoding'];
  const stored = chooseEncoding(accept, { br: entry.br.length > 0, gzip: entry.gzip.length > 0 });
  const wanted = chooseEncoding(accept);
  // A cold miss of a large document has only some of its forms yet: its spliced gzip (npm
  // packuments) or its identity bytes. What the client accepts is then made on the fly, on the
  // thread pool, rather than sending megabytes uncompressed (or a coding it did not ask for).
  const onTheFly =
    stored === 'identity' &&
    (lacksIdentity(entry) || (wanted !== 'identity' && entry.identity.length >= 64 * 1024));
  const encoding = onTheFly ? wanted : stored;
  const base = entry.etag.slice(1, -1);
  const suffix = onTheFly
    ? { br: '-brs', gzip: '-gzs', identity: '' }[encoding]
    : { br: '-br', gzip: entry.meta.splicedGzip === true ? '-gzf' : '-gz', identity: '' }[encoding];
  const etag = suffix === '' ? entry.etag : `"${base}${suffix}"`;
  reply.header('etag', etag);
  reply.header('vary', 'accept, accept-encoding');
  reply.header('cache-control', options.noStore === true ? 'no-store' : 'public, max-age=0, must-revalidate');
  reply.header('x-gatehouse-policy', options.policyVersion);
  reply.header('x-gatehouse-filtered', String(entry.meta.filtered));
  if (options.stale === true) {
    // RFC 7234 §5.5.1 warn-code 110; `Warning` is obsolete in RFC 9111 but clients still show it.
    reply.header('warning', staleWarning(entry.meta.uplink));
  }
  const inm = request.headers['if-none-match'];
  if (
    inm !== undefined &&
    inm.split(',').some(
      (t) =>
        t
          .trim()
          .replace(/^W\//, '')
          .replace(/-(brs|br|gzs|gzf|gz)"$/, '"') === entry.etag,
    )
  ) {
    return reply.code(304).send();
  }
  reply.header('content-type', entry.meta.contentType);
  if (encoding !== 'identity') reply.header('content-encoding', encoding);
  if (onTheFly) {
    let body: Readable = Readable.from([lacksIdentity(entry) ? entry.gzip : entry.identity]);
    if (lacksIdentity(entry)) body = body.pipe(createGunzip({ chunkSize: 1 << 20 }));
    if (encoding === 'gzip') body = body.pipe(createGzip({ level: 1 }));
    if (encoding === 'br') body = body.pipe(createBrotliCompress(FAST_BROTLI));
    return reply.code(200).send(body);
  }
  return reply
    .code(200)
    .send(encoding === 'br' ? entry.br : encoding === 'gzip' ? entry.gzip : entry.identity);
}

/** Age cut-off of metadata cache keys: the evaluation time rounded down to the configured step. */
export const cutoffOf = (now: number, step: number): number => Math.floor(now / step) * step;
