import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { GatewayError, isGatewayError } from '#core/errors';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Digest } from './cache/blob-cache.ts';
import { IntegrityMismatch } from './cache/verify.ts';
import { upstreamFailure } from './go/upstream.ts';
import { audit, callerOf, type RegistryContext } from './context.ts';
import type { UplinkClient } from './uplink/client.ts';

/** A file to serve: where it comes from and the digest it must have. */
export interface FileSource {
  readonly uplink: UplinkClient;
  readonly url: string;
  readonly digest: Digest;
  /** `npm:lodash@4.17.21` style, for messages and audit. */
  readonly resource: string;
  readonly contentType: string;
}

/** A file at the uplink whose digest is not known yet (a Go module zip before its download). */
export type UpstreamFile = Omit<FileSource, 'digest'>;

type ByteRange = { readonly start: number; readonly end: number } | 'unsatisfiable' | undefined;

/** Parses a single `bytes=` range (RFC 9110 §14.1.2); several ranges are served as a full 200. */
export function parseRange(header: string | undefined, size: number): ByteRange {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}

function fromDisk(
  request: FastifyRequest,
  reply: FastifyReply,
  path: string,
  size: number,
  src: FileSource,
): FastifyReply {
  reply.header('accept-ranges', 'bytes');
  reply.header('etag', `"${src.digest.algorithm}-${src.digest.hex.slice(0, 32)}"`);
  reply.header('content-type', src.contentType);
  reply.header('cache-control', 'public, max-age=31536000, immutable');
  const range = parseRange(request.headers.range, size);
  if (range === 'unsatisfiable') {
    reply.header('content-range', `bytes */${size}`);
    throw new GatewayError('GW_ERR_REGISTRY_RANGE_INVALID', {
      message: `Range "${request.headers.range ?? ''}" is outside the ${size} bytes of "${src.resource}"`,
      headers: { 'content-range': `bytes */${size}` },
    });
  }
  if (range === undefined) {
    reply.header('content-length', String(size));
    return reply.code(200).send(createReadStream(path));
  }
  reply.header('content-range', `bytes ${range.start}-${range.end}/${size}`);
  reply.header('content-length', String(range.end - range.start + 1));
  return reply.code(206).send(createReadStream(path, { start: range.start, end: range.end }));
}

function checkOrigin(src: UpstreamFile): void {
  if (!src.uplink.allows(src.url)) {
    throw new GatewayError('GW_ERR_REGISTRY_UPSTREAM_INVALID', {
      message: `Metadata of "${src.resource}" points its file outside uplink "${src.uplink.name}"; add the origin to fileOrigins to allow it`,
      details: { uplink: src.uplink.name },
    });
  }
}

async function fetchUpstream(src: FileSource, signal?: AbortSignal) {
  checkOrigin(src);
  const res = await src.uplink.requestFile({
    url: src.url,
    what: src.resource,
    ...(signal === undefined ? {} : { signal }),
  });
  if (res.status === 200) return res;
  // 404/410, 429 (with the client told when to retry), refused credentials and 5xx map as for
  // metadata.
  return upstreamFailure(res, src.uplink, src.resource);
}

const lengthOf = (value: unknown): number | undefined => {
  const n = Number(value);
  return typeof value === 'string' && value !== '' && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
};

/**
 * The size of a file not in the cache, without downloading it: the uplink's answer to a HEAD.
 * An uplink that does not implement HEAD (405, 501) is asked for its first byte instead
 * (`Range: bytes=0-0`, RFC 9110 §14.2), whose `Content-Range` gives the size; one that ignores
 * the range has its body cut off after the headers. `undefined` when the uplink states no size.
 */
async function headUpstream(src: UpstreamFile): Promise<number | undefined> {
  checkOrigin(src);
  const res = await src.uplink.requestFile({ url: src.url, what: src.resource, method: 'HEAD' });
  if (res.status === 200) {
    await res.body.dump().catch(() => undefined);
    return lengthOf(res.headers['content-length']);
  }
  if (res.status !== 405 && res.status !== 501) return upstreamFailure(res, src.uplink, src.resource);
  await res.body.dump().catch(() => undefined);
  const first = await src.uplink.requestFile({
    url: src.url,
    what: src.resource,
    headers: { range: 'bytes=0-0' },
  });
  if (first.status !== 200 && first.status !== 206) return upstreamFailure(first, src.uplink, src.resource);
  // At most the one byte asked for: a body that is longer (the range ignored) is cut off.
  await first.body.dump({ limit: 1 }).catch(() => undefined);
  if (first.status === 200) return lengthOf(first.headers['content-length']);
  return lengthOf(/\/(\d+)$/.exec(String(first.headers['content-range'] ?? ''))?.[1]);
}

function mismatch(
  ctx: RegistryContext,
  request: FastifyRequest,
  src: FileSource,
  error: IntegrityMismatch,
): void {
  ctx.metrics.integrityFailures.inc({ registry: src.uplink.name });
  const caller = callerOf(request);
  ctx.log.warn('Integrity mismatch, download aborted', { resource: src.resource, uplink: src.uplink.name });
  audit(ctx, {
    actor: caller.actor,
    action: 'registry.integrity.mismatch',
    resource: src.resource,
    decision: 'deny',
    reason: `Integrity check failed: ${error.message}`,
    clientIp: caller.clientIp,
    requestId: caller.requestId,
    details: { uplink: src.uplink.name, algorithm: error.expected.algorithm },
  });
}

/**
 * The door's error for a failed download, made once per download whatever the number of clients
 * waiting for it; a mismatch is counted and audited once too, as the request that started it.
 */
function fillFailure(
  ctx: RegistryContext,
  request: FastifyRequest,
  src: FileSource,
  error: unknown,
): GatewayError {
  if (error instanceof IntegrityMismatch) {
    mismatch(ctx, request, src, error);
    return new GatewayError('GW_ERR_REGISTRY_INTEGRITY_MISMATCH', {
      message: `Download of "${src.resource}" does not match its published digest`,
    });
  }
  if (isGatewayError(error)) return error;
  // The uplink's body broke off (reset, timeout): the same failure as an uplink that fails
  // before its body, not an internal error.
  return new GatewayError('GW_ERR_REGISTRY_UPLINK_UNAVAILABLE', {
    message: `Uplink "${src.uplink.name}" broke off the download of "${src.resource}"`,
    details: { uplink: src.uplink.name },
    cause: error,
  });
}

/** Waits for a shared download; its failure comes back as this request's own copy (own errorId). */
async function settled<T>(outcome: Promise<T>): Promise<T> {
  try {
    return await outcome;
  } catch (error) {
    if (!isGatewayError(error)) throw error;
    throw new GatewayError(error.code, {
      message: error.message,
      details: error.details,
      headers: error.headers,
      httpStatus: error.httpStatus,
      cause: error,
    });
  }
}

/**
 * Answers a HEAD of a file that is not in the cache without downloading it: from the uplink's
 * HEAD (`headUpstream`), after the policy decision the caller made as for a GET. Nothing enters
 * the cache, which holds only files whose digest was checked.
 */
export async function sendUpstreamHead(reply: FastifyReply, src: UpstreamFile): Promise<FastifyReply> {
  const length = await headUpstream(src);
  if (length !== undefined) reply.header('content-length', String(length));
  reply.header('content-type', src.contentType);
  reply.header('accept-ranges', 'bytes');
  // A stream, as for a GET: Fastify's HEAD route sets `Content-Length: 0` for an empty payload.
  return reply.code(200).send(Readable.from([]));
}

/**
 * Serves a package file: from the verified blob cache (with Range support), or streamed from
 * the uplink while its digest is checked; it enters the cache only when the digest matched, and
 * on a mismatch the client connection is aborted before the body completes.
 *
 * Concurrent misses of one digest share one upstream download (`BlobCache.fill`), which writes
 * the verified bytes into a temporary file at the uplink's pace. Every client without a Range,
 * the first one and those that join later, streams that file as it grows (`tail`): nobody waits
 * for the whole file (an OCI layer can take minutes, longer than a client's idle timeout), and a
 * slow or departed client does not hold back the download the others depend on. Upstream errors
 * that come before the body (404, 429, 5xx, refused credentials) reach every client as the same
 * mapped error; a failure after the headers (mismatch, cut-off body) aborts every streaming
 * connection. A Range request waits for the verified file and is served from disk, because a
 * range of an unverified file cannot be checked; it gets the failure as a status.
 *
 * A HEAD of a file not in the cache downloads nothing (`sendUpstreamHead`).
 */
export async function sendVerifiedFile(
  ctx: RegistryContext,
  request: FastifyRequest,
  reply: FastifyReply,
  src: FileSource,
): Promise<FastifyReply> {
  const path = ctx.blobs.path(src.digest);
  const size = await ctx.blobs.size(src.digest);
  if (size !== undefined) {
    ctx.metrics.cache.inc({ registry: src.uplink.name, kind: 'file', result: 'hit' });
    return fromDisk(request, reply, path, size, src);
  }
  // A HEAD is no reason to download (an OCI layer, a large jar).
  if (request.method === 'HEAD') return sendUpstreamHead(reply, src);
  const { fill, joined } = ctx.blobs.fill(
    src.digest,
    async () => {
      const res = await fetchUpstream(src);
      const length = lengthOf(res.headers['content-length']);
      return { body: res.body, ...(length === undefined ? {} : { length }) };
    },
    (error) => fillFailure(ctx, request, src, error),
  );
  ctx.metrics.cache.inc({ registry: src.uplink.name, kind: 'file', result: joined ? 'coalesced' : 'miss' });
  if (request.headers.range !== undefined) {
    return fromDisk(request, reply, path, await settled(fill.done), src);
  }
  const length = await settled(fill.ready);
  // A client that joins a download that already failed gets the failure as a status.
  if (fill.progress().failure !== undefined) await settled(fill.done);
  if (length !== undefined) reply.header('content-length', String(length));
  reply.header('content-type', src.contentType);
  reply.header('accept-ranges', 'bytes');
  const body = fill.tail();
  // The headers wait for the first verified bytes: a file that fails before them (a small file
  // is checked whole before its only chunk is released) is answered with its error status, not
  // a dropped connection.
  try {
    await once(body, 'readable');
  } catch (error) {
    body.destroy();
    await settled(fill.done);
    throw error;
  }
  // Later, abort the client connection: a response that starts as a 200 of a file must never
  // end as a complete body, and an error status can no longer be sent once bytes flowed.
  body.once('error', () => reply.raw.destroy());
  return reply.code(200).send(body);
}
