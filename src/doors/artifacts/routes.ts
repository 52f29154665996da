import type { FastifyInstance, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { CoreServices } from '#core/app';
import { GatewayError, isGatewayError } from '#core/errors';
import type { Action, Resource } from '#core/rbac';
import type { ArtifactContext } from './context.ts';
import { boundaryOf, type MultipartPart, parseMultipart } from './multipart.ts';
import type { ScanQueue } from './scan/queue.ts';
import { deleteArtifact, getArtifact, listArtifacts, listRepositories, toView } from './service.ts';
import type { TrustService } from './sign/service.ts';
import type { ItemRow } from './store/schema.ts';
import { isSha256, REPOSITORY_RE, type UploadRequest, uploadArtifact } from './upload.ts';

/** What the routes need. */
export interface RouteDeps {
  readonly core: CoreServices;
  readonly ctx: ArtifactContext;
  readonly queue: ScanQueue;
  readonly trust: TrustService;
}

const loaded = new WeakMap<FastifyRequest, ItemRow | null>();

/** The artifact a route works on (loaded before authorization so RBAC sees its repository). */
export function itemOf(request: FastifyRequest): ItemRow {
  const item = loaded.get(request);
  if (item === undefined || item === null) {
    const id = (request.params as { id?: string }).id ?? '';
    throw new GatewayError('GW_ERR_ARTIFACTS_NOT_FOUND', { message: `No artifact "${id}"`, details: { id } });
  }
  return item;
}

/** Loads `:id` without throwing; a missing artifact authorizes against `*` so only global roles learn it is absent. */
export function loadItem(ctx: ArtifactContext) {
  return async (request: FastifyRequest): Promise<void> => {
    const id = (request.params as { id?: string }).id ?? '';
    loaded.set(request, /^[0-9a-f-]{36}$/.test(id) ? await getArtifact(ctx, id).catch(() => null) : null);
  };
}

/**
 * The RBAC resource of the loaded artifact as `action` is authorized on it, hiding the artifact
 * from a caller who may neither read it nor do `action` in its repository: the route then treats
 * it as absent (refused on `*`, as an id that names nothing), so a repository-bound caller cannot
 * tell another repository's artifact from a missing one by the status, the message or the
 * resource. Asked by requirePermission once the caller is authenticated (after any ticket
 * redemption).
 */
export function seenItemResource(core: CoreServices, action: Action): (request: FastifyRequest) => Resource {
  return (request) => {
    const item = loaded.get(request);
    const principal = request.principal;
    if (item !== undefined && item !== null && principal !== undefined) {
      const resource: Resource = { type: 'artifact', namespace: item.repository, id: item.id };
      if (
        !core.authorize(principal, 'artifacts:read', resource).allowed &&
        !core.authorize(principal, action, resource).allowed
      )
        loaded.set(request, null);
    }
    return itemResource(request);
  };
}

/** The guards of a route on one artifact (`:id`): load it, then require `action` on it as seen. */
export function itemGuards(
  core: CoreServices,
  ctx: ArtifactContext,
  action: Action,
): preHandlerAsyncHookHandler[] {
  return [loadItem(ctx), core.http.requirePermission(action, seenItemResource(core, action))];
}

/** The RBAC resource of the loaded artifact. */
export function itemResource(request: FastifyRequest): Resource {
  const item = loaded.get(request);
  return item === undefined || item === null
    ? { type: 'artifact', namespace: '*' }
    : { type: 'artifact', namespace: item.repository, id: item.id };
}

/** The audit resource name of an artifact. */
export function auditResource(item: Pick<ItemRow, 'repository' | 'name' | 'version' | 'id'>): string {
  return `artifact:${item.repository}/${item.name}@${item.version}#${item.id}`;
}

function actorOf(request: FastifyRequest): string {
  return request.principal?.id ?? 'anonymous';
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function visibleRepositories(core: CoreServices, request: FastifyRequest): readonly string[] | undefined {
  const principal = request.principal;
  if (principal === undefined) return [];
  if (core.authorize(principal, 'artifacts:list', { type: 'artifact', namespace: '*' }).allowed)
    return undefined;
  return principal.bindings
    .map((b) => b.namespace)
    .filter((ns) => core.authorize(principal, 'artifacts:list', { type: 'artifact', namespace: ns }).allowed);
}

/**
 * Whether another artifact the caller may list holds the same content: the upload's
 * `deduplicated` as the caller may learn it. The store deduplicates across every repository,
 * but telling a caller so would reveal that bytes they hold exist in a repository they cannot
 * see (the audit event keeps the store's own answer).
 */
async function sharesVisibleContent(
  deps: RouteDeps,
  request: FastifyRequest,
  item: ItemRow,
): Promise<boolean> {
  const repositories = visibleRepositories(deps.core, request);
  const { items } = await listArtifacts(deps.ctx, {
    ...(repositories === undefined ? {} : { repositories }),
    sha256: item.digest,
    limit: 2,
  });
  return items.some((other) => other.id !== item.id);
}

function registerRepositories(app: FastifyInstance, deps: RouteDeps): void {
  app.get('/api/artifacts/-/repositories', { preHandler: deps.core.http.authenticate }, async (request) => {
    const own = (request.principal?.bindings ?? [])
      .map((b) => b.namespace)
      .filter((ns) => REPOSITORY_RE.test(ns));
    const configured = Object.keys(deps.ctx.config().quotas);
    const repositories = await listRepositories(deps.ctx, visibleRepositories(deps.core, request), [
      ...new Set(['default', ...configured, ...own]),
    ]);
    return { repositories, total: repositories.length };
  });
}

function badQuery(field: string, message: string): GatewayError {
  return new GatewayError('GW_ERR_REQUEST_INVALID', { message, details: { field } });
}

/** A list filter given once, or undefined; a repeated parameter would silently widen the list. */
function queryText(q: Record<string, unknown>, field: string): string | undefined {
  const value = q[field];
  if (Array.isArray(value)) throw badQuery(field, `Query parameter "${field}" is given more than once`);
  return str(value);
}

/** One of `allowed`, or undefined when absent; anything else is refused rather than ignored. */
function queryChoice<T extends string>(
  q: Record<string, unknown>,
  field: string,
  allowed: readonly T[],
): T | undefined {
  const value = queryText(q, field);
  if (value === undefined || (allowed as readonly string[]).includes(value)) return value as T | undefined;
  throw badQuery(
    field,
    `Query parameter "${field}" must be one of ${allowed.map((a) => `"${a}"`).join(', ')}`,
  );
}

/** A non-negative integer page parameter (limit, offset). */
function queryCount(q: Record<string, unknown>, field: string, fallback: number): number {
  const value = queryText(q, field);
  if (value === undefined) return fallback;
  if (!/^\d{1,15}$/.test(value))
    throw badQuery(field, `Query parameter "${field}" must be a non-negative integer, not "${value}"`);
  return Number(value);
}

/**
 * The `sha256` filter in lower case, as digests are stored; tools print it in upper case too.
 * Anything that is no SHA-256 is refused: it could match nothing, and an empty list would read
 * as "no such artifact".
 */
function queryDigest(q: Record<string, unknown>): string | undefined {
  const value = queryText(q, 'sha256');
  if (value === undefined) return undefined;
  if (!isSha256(value))
    throw badQuery('sha256', `Query parameter "sha256" must be 64 hex digits, not "${value.slice(0, 100)}"`);
  return value.toLowerCase();
}

function registerList(app: FastifyInstance, deps: RouteDeps): void {
  app.get('/api/artifacts', { preHandler: deps.core.http.authenticate }, async (request) => {
    const q = request.query as Record<string, unknown>;
    const sort = queryChoice(q, 'sort', ['name', 'created', 'size'] as const);
    const order = queryChoice(q, 'order', ['asc', 'desc'] as const);
    const status = queryChoice(q, 'status', ['quarantined', 'approved', 'blocked'] as const);
    const repository = queryText(q, 'repository');
    const name = queryText(q, 'name');
    const version = queryText(q, 'version');
    const sha256 = queryDigest(q);
    const limit = queryCount(q, 'limit', 50);
    const offset = queryCount(q, 'offset', 0);
    const visible = visibleRepositories(deps.core, request);
    const { items, total } = await listArtifacts(deps.ctx, {
      ...(visible === undefined ? {} : { repositories: visible }),
      ...(repository === undefined ? {} : { repository }),
      ...(name === undefined ? {} : { name }),
      ...(version === undefined ? {} : { version }),
      ...(sha256 === undefined ? {} : { sha256 }),
      ...(status === undefined ? {} : { status }),
      ...(sort === undefined ? {} : { sort }),
      ...(order === undefined ? {} : { order }),
      limit: limit === 0 ? 50 : limit,
      offset,
    });
    return { items: items.map(toView), total };
  });
}

async function auditUpload(
  deps: RouteDeps,
  request: FastifyRequest,
  req: Partial<UploadRequest>,
  error: unknown,
): Promise<void> {
  const code = isGatewayError(error) ? error.code : 'GW_ERR_INTERNAL';
  deps.ctx.metrics.uploads.inc({ result: 'rejected' });
  await deps.ctx.audit({
    actor: actorOf(request),
    action: 'artifacts.upload',
    resource: `artifact:${req.repository ?? '?'}/${req.name ?? '?'}@${req.version ?? '?'}`,
    decision: isGatewayError(error) && error.kind !== 'INTERNAL' ? 'deny' : 'error',
    reason: error instanceof Error ? error.message : String(error),
    clientIp: request.clientIp,
    details: { code },
  });
}

/**
 * The upload's byte stream. Fastify skips content-type parsing for an empty body, so there is no
 * parsed body then; the raw request is the same (empty) stream.
 */
function bodyOf(request: FastifyRequest): AsyncIterable<Uint8Array> {
  return (request.body ?? request.raw) as AsyncIterable<Uint8Array>;
}

/**
 * Text fields a multipart upload may send before its file part. Five are meaningful; the bound
 * keeps a client from holding the request open with endless small fields.
 */
export const MAX_MULTIPART_FIELDS = 16;

/**
 * The file part's bytes, then the proof that the body ends there: a part after the file (a
 * `sha256` sent last would otherwise be ignored while the client believes it was checked) or a
 * body without its closing delimiter fails the upload before anything is committed.
 */
async function* lastPart(body: AsyncIterable<Buffer>, parts: AsyncGenerator<MultipartPart>) {
  yield* body;
  const next = await parts.next();
  if (next.done !== true) {
    throw new GatewayError('GW_ERR_ARTIFACTS_UPLOAD_INVALID', {
      message: `Multipart upload has a part "${next.value.name}" after its file part; send fields before the file`,
      details: { field: next.value.name },
    });
  }
}

/** Reads the leading fields of a multipart upload, then hands over the file part's stream. */
async function multipartUpload(
  deps: RouteDeps,
  request: FastifyRequest,
  base: Partial<UploadRequest>,
  boundary: string,
) {
  const fields: Record<string, string> = {};
  let fieldCount = 0;
  const parts = parseMultipart(bodyOf(request), boundary);
  for await (const part of parts) {
    if (part.fileName === undefined && part.name !== 'file') {
      // Two values of one field leave it open which one the client meant (and which one RBAC saw).
      if (Object.hasOwn(fields, part.name))
        throw new GatewayError('GW_ERR_ARTIFACTS_UPLOAD_INVALID', {
          message: `Multipart upload has field "${part.name}" more than once`,
          details: { field: part.name },
        });
      fieldCount += 1;
      if (fieldCount > MAX_MULTIPART_FIELDS)
        throw new GatewayError('GW_ERR_ARTIFACTS_UPLOAD_INVALID', {
          message: `Multipart upload has more than ${MAX_MULTIPART_FIELDS} fields before its file part`,
          details: { field: 'body', limit: MAX_MULTIPART_FIELDS },
        });
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const c of part.body) {
        size += c.length;
        if (size > 4096)
          throw new GatewayError('GW_ERR_ARTIFACTS_UPLOAD_INVALID', {
            message: `Field "${part.name}" is too long`,
          });
        chunks.push(c);
      }
      fields[part.name] = Buffer.concat(chunks).toString('utf8');
      continue;
    }
    const repository = fields['repository'] ?? base.repository ?? 'default';
    const principal = request.principal;
    if (
      principal === undefined ||
      !deps.core.authorize(principal, 'artifacts:upload', { type: 'artifact', namespace: repository }).allowed
    ) {
      throw new GatewayError('GW_ERR_RBAC_DENIED', {
        message: `Uploading to repository "${repository}" is not allowed`,
        details: { action: 'artifacts:upload' },
      });
    }
    const req = {
      ...base,
      repository,
      name: fields['name'] ?? base.name ?? '',
      version: fields['version'] ?? base.version ?? '',
      fileName: part.fileName ?? fields['fileName'] ?? base.fileName,
      // The request's own type is the form envelope's, never the file's.
      mediaType: part.contentType ?? 'application/octet-stream',
      ...((fields['sha256'] ?? base.expectedSha256)
        ? { expectedSha256: fields['sha256'] ?? base.expectedSha256 }
        : {}),
      body: lastPart(part.body, parts),
      actor: actorOf(request),
    } as UploadRequest;
    return { req, result: await uploadArtifact(deps.ctx, req) };
  }
  throw new GatewayError('GW_ERR_ARTIFACTS_UPLOAD_INVALID', {
    message: 'Multipart upload has no file part',
    details: { field: 'file' },
  });
}

function registerUpload(app: FastifyInstance, deps: RouteDeps): void {
  void app.register(async (scope) => {
    // The body stays a stream: no parser buffers it, and Fastify's bodyLimit does not apply
    // (maxArtifactSize and quotas do, while streaming).
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    const resource = (request: FastifyRequest): Resource => {
      const repository = str((request.query as Record<string, unknown>)['repository']) ?? 'default';
      return { type: 'artifact', namespace: REPOSITORY_RE.test(repository) ? repository : '*' };
    };
    const byQuery = deps.core.http.requirePermission('artifacts:upload', resource);
    // A form may name its repository in a field, which only the body holds: without one in the
    // query, the caller is authenticated here and the form's own check (multipartUpload)
    // decides on the repository it names, before any byte of the file is stored.
    const guard: preHandlerAsyncHookHandler = async function (this: unknown, request, reply) {
      const form = /^multipart\/form-data\b/i.test(request.headers['content-type'] ?? '');
      const named = str((request.query as Record<string, unknown>)['repository']) !== undefined;
      const hook = form && !named ? deps.core.http.authenticate : byQuery;
      await hook.call(this as never, request, reply);
    };
    scope.post('/api/artifacts', { preHandler: guard }, async (request, reply) => {
      const q = request.query as Record<string, unknown>;
      const length = request.headers['content-length'];
      const contentType = request.headers['content-type'];
      const base: Partial<UploadRequest> = {
        repository: str(q['repository']) ?? 'default',
        name: str(q['name']) ?? '',
        version: str(q['version']) ?? '',
        ...(str(q['fileName']) === undefined ? {} : { fileName: str(q['fileName']) ?? '' }),
        ...(str(q['sha256']) === undefined ? {} : { expectedSha256: str(q['sha256']) ?? '' }),
        mediaType: contentType ?? 'application/octet-stream',
      };
      try {
        const boundary = boundaryOf(contentType);
        const { req, result } =
          boundary === undefined
            ? await (async () => {
                const req = {
                  ...base,
                  ...(length === undefined ? {} : { contentLength: Number(length) }),
                  body: bodyOf(request),
                  actor: actorOf(request),
                } as UploadRequest;
                return { req, result: await uploadArtifact(deps.ctx, req) };
              })()
            : await multipartUpload(deps, request, base, boundary);
        deps.ctx.metrics.uploads.inc({ result: 'ok' });
        await deps.ctx.audit({
          actor: req.actor,
          action: 'artifacts.upload',
          resource: auditResource(result.item),
          decision: 'allow',
          clientIp: request.clientIp,
          details: {
            sha256: result.item.digest,
            size: result.item.size,
            deduplicated: result.deduplicated,
          },
        });
        deps.queue.kick();
        return reply
          .code(201)
          .header('location', `/api/artifacts/${result.item.id}`)
          .send({
            ...toView(result.item),
            deduplicated: result.deduplicated && (await sharesVisibleContent(deps, request, result.item)),
          });
      } catch (error) {
        await auditUpload(deps, request, base, error);
        throw error;
      }
    });
  });
}

function registerItemRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { core, ctx } = deps;
  const pre = (action: Action) => itemGuards(core, ctx, action);
  app.get('/api/artifacts/:id', { preHandler: pre('artifacts:read') }, async (request) =>
    toView(itemOf(request)),
  );
  app.delete('/api/artifacts/:id', { preHandler: pre('artifacts:delete') }, async (request, reply) => {
    const item = itemOf(request);
    const { shredded } = await deleteArtifact(ctx, item.id);
    // Its repository's signatures of the digest may have gone with it, even when the bytes stay.
    deps.trust.forget(item.digest);
    await ctx.audit({
      actor: actorOf(request),
      action: 'artifacts.delete',
      resource: auditResource(item),
      decision: 'allow',
      clientIp: request.clientIp,
      details: { sha256: item.digest, shredded },
    });
    return reply.code(204).send();
  });
}

/** Registers the core artifact routes (list, upload, read, delete); downloads are in download-routes.ts. */
export function registerArtifactRoutes(app: FastifyInstance, deps: RouteDeps): void {
  registerList(app, deps);
  registerRepositories(app, deps);
  registerUpload(app, deps);
  registerItemRoutes(app, deps);
}
