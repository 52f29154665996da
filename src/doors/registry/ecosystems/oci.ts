import { GatewayError, isGatewayError } from '#core/errors';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { makeEntry } from '../cache/entry.ts';
import {
  type Caller,
  callerOf,
  decideMany,
  deniedError,
  headerText,
  prepareError,
  readBody,
  type RegistryContext,
  staleWarning,
} from '../context.ts';
import { sendVerifiedFile } from '../files.ts';
import { upstreamFailure } from '../go/upstream.ts';
import { VersionFacts } from '../version-facts.ts';
import {
  auditInvalidUpstream,
  type Built,
  cachedDocument,
  type RefreshPoint,
  servedStale,
} from '../metadata-flow.ts';
import {
  knownTags,
  linkTags,
  type Manifest,
  type NamedTags,
  type OciSource,
  publishedAt,
  type ResolvedManifest,
  resolveManifest,
  resolveNamedTags,
} from '../oci/manifests.ts';
import { ociChallenge } from '../oci/login.ts';
import { isDigest, type OciRequest, parseOciPath } from '../oci/paths.ts';
import type { UplinkClient } from '../uplink/client.ts';
import type { EcosystemHandler, LookupFacts } from './handler.ts';

/** OCI error codes (distribution-spec "Error Codes") for the door's errors. */
function ociCode(code: string, kind: OciRequest['kind'] | undefined): string {
  if (code === 'GW_ERR_POLICY_DENIED') return 'DENIED';
  if (code === 'GW_ERR_REGISTRY_NAME_INVALID') return 'NAME_INVALID';
  if (code === 'GW_ERR_REGISTRY_DIGEST_INVALID') return 'DIGEST_INVALID';
  if (code === 'GW_ERR_REQUEST_INVALID' && kind === 'tags') return 'PAGINATION_NUMBER_INVALID';
  if (code === 'GW_ERR_REGISTRY_UPLINK_RATE_LIMITED') return 'TOOMANYREQUESTS';
  if (code === 'GW_ERR_REGISTRY_UPLINK_AUTH' || code.startsWith('GW_ERR_AUTH_')) return 'UNAUTHORIZED';
  if (code === 'GW_ERR_RBAC_DENIED') return 'DENIED';
  if (code === 'GW_ERR_REGISTRY_INTEGRITY_MISMATCH')
    return kind === 'blob' ? 'DIGEST_INVALID' : 'MANIFEST_INVALID';
  if (code === 'GW_ERR_REGISTRY_NOT_FOUND')
    return kind === 'blob' ? 'BLOB_UNKNOWN' : kind === 'manifest' ? 'MANIFEST_UNKNOWN' : 'NAME_UNKNOWN';
  return 'UNKNOWN';
}

/** OCI clients print `errors[].message`; a refusal also carries a `Warning` header with the reason. */
function sendOciError(
  ctx: RegistryContext,
  reply: FastifyReply,
  error: unknown,
  request: FastifyRequest,
  kind?: OciRequest['kind'],
): FastifyReply {
  const e = prepareError(ctx, request, reply, error);
  // The door's own login (`registry.auth: required`): clients follow the challenge to its realm.
  if (e.httpStatus === 401 && e.code.startsWith('GW_ERR_AUTH_'))
    reply.header('www-authenticate', ociChallenge(ctx, request));
  const code = ociCode(e.code, kind);
  if (code === 'DENIED')
    reply.header('warning', `299 gatehouse "${headerText(e.message).replace(/"/g, "'")}"`);
  return reply
    .code(e.code === 'GW_ERR_INTERNAL' ? 500 : e.httpStatus)
    .header('docker-distribution-api-version', 'registry/2.0')
    .type('application/json')
    .send({ errors: [{ code, message: e.message, detail: { code: e.code, errorId: e.errorId } }] });
}

/**
 * `n` of a tags list is a count of tags; anything else (`abc`, `-1`, `2.5`, given twice) is
 * refused as the reference registry refuses it (PAGINATION_NUMBER_INVALID, 400) before any
 * uplink work.
 */
function checkPageSize(n: string | readonly string[] | undefined): void {
  if (n === undefined || (typeof n === 'string' && /^\d{1,9}$/.test(n))) return;
  const given = typeof n === 'string' ? n : n.join('&n=');
  throw new GatewayError('GW_ERR_REQUEST_INVALID', {
    message: `Invalid tags list page size "n=${given.slice(0, 40)}": expected a whole number of tags from 0`,
    details: { errors: [{ field: 'n', expected: 'a whole number from 0' }] },
  });
}

const PARALLEL = 8;
const MAX_TAGS = 2000;
const MAX_TAG_PAGES = 100;
/** Why a tag's manifest may be missing from a tags list that is still complete. */
const LEFT_OUT = new Set([
  'GW_ERR_REGISTRY_NOT_FOUND',
  'GW_ERR_REGISTRY_INTEGRITY_MISMATCH',
  'GW_ERR_REGISTRY_UPSTREAM_INVALID',
  'GW_ERR_REGISTRY_UPSTREAM_TOO_LARGE',
]);

/** Layer media types of cosign signatures, in-toto attestations and SBOMs: data, not a file system. */
const ABOUT_LAYERS: ReadonlySet<string> = new Set([
  'application/vnd.dev.cosign.simplesigning.v1+json',
  'application/vnd.dsse.envelope.v1+json',
  'text/spdx',
  'text/spdx+json',
  'text/spdx+xml',
  'application/vnd.cyclonedx',
  'application/vnd.cyclonedx+json',
  'application/vnd.cyclonedx+xml',
  'application/vnd.syft+json',
]);

/**
 * A cosign signature, attestation or SBOM (the tag `sha256-<subject>.sig|.att|.sbom`, every
 * layer of a signature, envelope or SBOM type, none a runtime would unpack) is as old as the
 * image it is about: it has no build time of its own, so dated by first sight it was refused
 * for the minimum age while its image passed, and cosign verify failed through the door.
 * Undefined for anything else, or when the subject cannot be resolved.
 */
async function aboutTime(s: OciSource, reference: string, m: Manifest): Promise<number | undefined> {
  const about = /^sha256-([0-9a-f]{64})\.(?:sig|att|sbom)$/.exec(reference);
  if (about === null) return undefined;
  const doc = JSON.parse(m.bytes.toString('utf8')) as { layers?: readonly { mediaType?: unknown }[] };
  const layers = Array.isArray(doc.layers) ? doc.layers : [];
  if (
    layers.length === 0 ||
    !layers.every((l) => typeof l.mediaType === 'string' && ABOUT_LAYERS.has(l.mediaType))
  )
    return undefined;
  const subject = await resolveManifest(s, `sha256:${about[1]}`).catch(() => undefined);
  return subject === undefined ? undefined : publishedAt(s, subject);
}

/** What deciding one manifest needs besides how it was asked for. */
interface ManifestFacts {
  readonly digest: string;
  /** Tags known to point at the digest. */
  readonly tags: readonly string[];
  /** Where the tags the policy's lists name point. */
  readonly named: NamedTags;
  /** Publication time. */
  readonly t: number;
}

/**
 * The policy facts of one manifest as asked for (tag or digest): its digest, the other tags
 * known to point at it (and the named tags that do) and the named tags that could not be resolved.
 */
function subjectFacts(s: OciSource, version: string, f: ManifestFacts): LookupFacts {
  const { digest, tags, named, t } = f;
  const pointing = [...named.links].filter(([, d]) => d === digest).map(([tag]) => tag);
  const aliases = [...new Set([...tags, ...pointing])].filter((tag) => tag !== version);
  const unresolved = named.unresolved
    .filter((u) => u.version !== version)
    .map((u) => ({ version: u.version, reason: u.error.message }));
  return {
    digest,
    ...(aliases.length === 0 ? {} : { aliases }),
    ...(unresolved.length === 0 ? {} : { unresolvedAliases: unresolved }),
    registry: s.uplink.name,
    publishedAt: t,
  };
}

/** OCI / Docker registries under `/v2/<uplink>/<repository>/…`. */
export function createOciHandler(ctx: RegistryContext, uplinks: readonly UplinkClient[]): EcosystemHandler {
  const facts = new VersionFacts(ctx.core.db);
  const byName = new Map(uplinks.map((u) => [u.name, u]));
  const kindOf = new WeakMap<FastifyRequest, OciRequest>();
  const source = (req: OciRequest, caller: Caller): OciSource => {
    const uplink = byName.get(req.uplink);
    if (uplink === undefined)
      throw new GatewayError('GW_ERR_REGISTRY_NOT_FOUND', {
        message: `No OCI uplink is named "${req.uplink}"`,
      });
    return { ctx, facts, uplink, repo: req.repo, caller };
  };

  /**
   * Where the tags the policy's list entries name for this repository point, resolved before any
   * of its manifests is decided: on a fresh gateway nothing links a denied tag to its digest yet,
   * and a pull by digest or through another tag would pass.
   */
  const namedTags = (
    s: OciSource,
    known?: ReadonlyMap<string, string>,
    skip?: ReadonlySet<string>,
  ): Promise<NamedTags> => {
    const named = ctx.policy.current().namedVersions('oci', `${s.uplink.name}/${s.repo}`, s.uplink.name);
    return resolveNamedTags(
      s,
      // Skipped: tags the caller has already tried (a tags list leaves out a tag it cannot serve).
      named.filter((tag) => known?.has(tag) === true || skip?.has(tag) !== true),
      known,
    );
  };

  /** What deciding a manifest asked for by `reference` needs besides it: see `decide`. */
  const manifestFacts = async (s: OciSource, reference: string, m: Manifest): Promise<ManifestFacts> => ({
    digest: m.digest,
    named: await namedTags(s, isDigest(reference) ? undefined : new Map([[reference, m.digest]])),
    tags: await knownTags(s, m.digest),
    t: (await aboutTime(s, reference, m)) ?? (await publishedAt(s, m)),
  });

  /**
   * Decides one manifest as asked for (tag or digest), with its digest and the other tags known
   * to point at it (those resolved before and the named tags that point at it), so a deny entry
   * naming any of them refuses it however it is pulled; a named tag that could not be resolved
   * goes to policy as unresolved, and a deny entry naming it refuses (fail closed).
   */
  async function decide(
    s: OciSource,
    version: string,
    f: ManifestFacts,
    caller: Caller,
    kind: 'file' | 'metadata',
  ) {
    const subject = {
      ecosystem: 'oci' as const,
      name: `${s.uplink.name}/${s.repo}`,
      version,
      ...subjectFacts(s, version, f),
    };
    const [d] = await decideMany(ctx, [subject], caller, {
      now: ctx.clock.now(),
      registry: s.uplink.name,
      kind,
    });
    return d;
  }

  const manifest = async (
    req: OciRequest & { reference: string },
    request: FastifyRequest,
    reply: FastifyReply,
  ) => {
    const caller = callerOf(request);
    const s = source(req, caller);
    const m = await resolveManifest(s, req.reference, { stale: true });
    ctx.metrics.cache.inc({ registry: s.uplink.name, kind: 'manifest', result: m.hit ? 'hit' : 'miss' });
    const d = await decide(s, req.reference, await manifestFacts(s, req.reference, m), caller, 'file');
    if (d === undefined || !d.allowed) throw deniedError(d as never);
    if (m.stale !== undefined) {
      servedStale(ctx, caller, {
        resource: `oci:${s.uplink.name}/${s.repo}:${req.reference}`,
        uplink: s.uplink.name,
        error: m.stale,
        details: { digest: m.digest },
      });
      reply.header('warning', staleWarning(s.uplink.name));
    }
    return reply
      .code(200)
      .header('content-type', m.mediaType)
      .header('docker-content-digest', m.digest)
      .header('etag', `"${m.digest}"`)
      .header('docker-distribution-api-version', 'registry/2.0')
      .send(m.bytes);
  };

  const blob = async (
    req: OciRequest & { reference: string },
    request: FastifyRequest,
    reply: FastifyReply,
  ) => {
    const s = source(req, callerOf(request));
    const [algorithm, hex] = req.reference.split(':') as ['sha256' | 'sha512', string];
    reply.header('docker-content-digest', req.reference);
    return sendVerifiedFile(ctx, request, reply, {
      uplink: s.uplink,
      url: s.uplink.resolve(`v2/${s.repo}/blobs/${req.reference}`),
      digest: { algorithm, hex },
      resource: `oci:${s.uplink.name}/${s.repo}@${req.reference}`,
      contentType: 'application/octet-stream',
    });
  };

  /**
   * Every tag the uplink lists (up to MAX_TAGS), following its `Link: <…>; rel="next"` pages
   * (distribution-spec "Listing Tags"), which registries that cap the page size send; a page
   * link to another origin is refused, since the uplink's credentials would follow it.
   */
  async function upstreamTags(s: OciSource, caller: Caller): Promise<string[]> {
    const what = `${s.uplink.name}/${s.repo} tags`;
    const invalid = (why: string) => {
      auditInvalidUpstream(ctx, caller, `oci:${s.uplink.name}/${s.repo}`, s.uplink.name, why);
      return new GatewayError('GW_ERR_REGISTRY_UPSTREAM_INVALID', {
        message: `Uplink "${s.uplink.name}" sent an invalid tags list for "${s.uplink.name}/${s.repo}": ${why}`,
      });
    };
    const tags = new Set<string>();
    let url: string | undefined = s.uplink.resolve(`v2/${s.repo}/tags/list?n=${MAX_TAGS}`);
    const { origin } = new URL(url);
    for (let page = 0; url !== undefined && tags.size < MAX_TAGS; page++) {
      if (page === MAX_TAG_PAGES) throw invalid(`more than ${MAX_TAG_PAGES} pages`);
      const res = await s.uplink.request({
        url,
        what,
        headers: { 'x-oci-scope': `repository:${s.repo}:pull` },
      });
      if (res.status !== 200) await upstreamFailure(res, s.uplink, what);
      const body = (await readBody(res, ctx.config().cache.maxMetadataSize, what)).toString('utf8');
      let doc: { tags?: unknown };
      try {
        doc = JSON.parse(body) as typeof doc;
      } catch (error) {
        throw invalid((error as Error).message);
      }
      // distribution-spec: an object whose `tags` is an array (or null for a repository without tags).
      if (
        typeof doc !== 'object' ||
        doc === null ||
        Array.isArray(doc) ||
        !(doc.tags == null || Array.isArray(doc.tags))
      )
        throw invalid('the tags list is not an object with a "tags" array');
      for (const t of Array.isArray(doc.tags) ? doc.tags : []) if (typeof t === 'string') tags.add(t);
      const next = /<([^>]*)>\s*;\s*rel="?next"?/.exec(String(res.headers['link'] ?? ''))?.[1];
      const nextUrl: URL | null | undefined = next === undefined ? undefined : URL.parse(next, url);
      if (nextUrl === null) throw invalid('a malformed next page link');
      if (nextUrl !== undefined && nextUrl.origin !== origin)
        throw invalid(`a next page on another origin "${nextUrl.origin}"`);
      url = nextUrl?.toString();
    }
    return [...tags].slice(0, MAX_TAGS);
  }

  async function buildTags(s: OciSource, at: RefreshPoint, caller: Caller): Promise<Built<'tags'>> {
    const tags = await upstreamTags(s, caller);
    const resolved = new Map<string, ResolvedManifest>();
    for (let i = 0; i < tags.length; i += PARALLEL) {
      await Promise.all(
        tags.slice(i, i + PARALLEL).map(async (tag) => {
          const m = await resolveManifest(s, tag).catch((error: unknown) => {
            // A tag deleted since the list, or one whose manifest cannot be served, is left out
            // (audited; a mismatch is audited where it is found); an uplink failure fails the
            // whole list, so that no partial list reaches the cache.
            if (!isGatewayError(error) || !LEFT_OUT.has(error.code)) throw error;
            if (
              error.code !== 'GW_ERR_REGISTRY_NOT_FOUND' &&
              error.code !== 'GW_ERR_REGISTRY_INTEGRITY_MISMATCH'
            )
              auditInvalidUpstream(
                ctx,
                caller,
                `oci:${s.uplink.name}/${s.repo}:${tag}`,
                s.uplink.name,
                error.message,
              );
            return undefined;
          });
          if (m !== undefined) resolved.set(tag, m);
        }),
      );
    }
    // Every tag is resolved before any is decided, so each decision sees all the tags of its
    // digest (this list's and those known before): a denied tag hides the others that share it.
    await linkTags(
      s,
      [...resolved].map(([tag, m]) => ({ tag, digest: m.digest })),
    );
    // The listed tags were resolved (or left out) above; a named tag beyond the list (more than
    // MAX_TAGS) is resolved now, and one that cannot be fails the whole list, as a listed tag
    // does, rather than hiding every tag of a cached list.
    const named = await namedTags(
      s,
      new Map([...resolved].map(([tag, m]) => [tag, m.digest])),
      new Set(tags),
    );
    const failed = named.unresolved[0];
    if (failed !== undefined) throw failed.error;
    const known = new Map<string, readonly string[]>();
    for (const m of resolved.values())
      if (!known.has(m.digest)) known.set(m.digest, await knownTags(s, m.digest));
    const allowed: string[] = [];
    const entries = [...resolved];
    for (let i = 0; i < entries.length; i += PARALLEL) {
      await Promise.all(
        entries.slice(i, i + PARALLEL).map(async ([tag, m]) => {
          const t = await publishedAt(s, m);
          const d = await decide(
            s,
            tag,
            { digest: m.digest, tags: known.get(m.digest) ?? [], named, t },
            caller,
            'metadata',
          );
          if (d?.allowed === true) allowed.push(tag);
        }),
      );
    }
    allowed.sort();
    const entry = await makeEntry(
      {
        contentType: 'application/json',
        fetchedAt: at.cutoff,
        uplink: s.uplink.name,
        filtered: tags.length - allowed.length,
        total: tags.length,
      },
      JSON.stringify({ name: `${s.uplink.name}/${s.repo}`, tags: allowed }),
    );
    return { entries: { tags: entry } };
  }

  const tagsList = async (req: OciRequest, request: FastifyRequest, reply: FastifyReply) => {
    const s = source(req, callerOf(request));
    const name = `${s.uplink.name}/${s.repo}`;
    checkPageSize((request.query as { n?: string | string[] }).n);
    const result = await cachedDocument(ctx, request, {
      ecosystem: 'oci',
      name,
      variant: 'tags',
      uplink: s.uplink,
      build: (at, c) => buildTags(s, at, c),
    });
    const all = (JSON.parse(result.entry.identity.toString('utf8')) as { tags: string[] }).tags;
    const q = request.query as { n?: string; last?: string };
    const n = q.n === undefined ? all.length : Math.min(Number(q.n), MAX_TAGS);
    const after = q.last === undefined ? all : all.filter((t) => t > (q.last as string));
    const page = after.slice(0, n);
    // distribution-spec "Listing Tags": a `Link` header with rel="next" when more tags follow.
    if (after.length > page.length && page.length > 0)
      reply.header(
        'link',
        `</v2/${name}/tags/list?n=${n}&last=${encodeURIComponent(page.at(-1) as string)}>; rel="next"`,
      );
    return reply
      .header('docker-distribution-api-version', 'registry/2.0')
      .type('application/json')
      .send({ name, tags: page });
  };

  return {
    ecosystem: 'oci',
    prefix: '/v2',
    register(scope: FastifyInstance) {
      scope.setErrorHandler((error, request, reply) =>
        sendOciError(ctx, reply, error, request, kindOf.get(request)?.kind),
      );
      const missing = (request: FastifyRequest) =>
        new GatewayError('GW_ERR_REGISTRY_UNSUPPORTED', {
          message: `"${request.method} ${request.url.split('?')[0] ?? ''}" is not served by the Gatehouse OCI proxy`,
        });
      scope.setNotFoundHandler((request, reply) => sendOciError(ctx, reply, missing(request), request));
      scope.addHook('onResponse', async (request, reply) => {
        const req = kindOf.get(request);
        ctx.metrics.requests.inc({
          registry: req?.uplink ?? 'none',
          ecosystem: 'oci',
          kind: req?.kind === 'blob' ? 'file' : 'metadata',
          status: reply.statusCode,
        });
      });
      scope.get('/', async (_request, reply) =>
        reply.header('docker-distribution-api-version', 'registry/2.0').send({}),
      );
      scope.get('/*', async (request, reply) => {
        const req = parseOciPath((request.params as { '*': string })['*']);
        if (req === undefined) throw missing(request);
        kindOf.set(request, req);
        if (req.kind === 'tags') return tagsList(req, request, reply);
        return req.kind === 'manifest' ? manifest(req, request, reply) : blob(req, request, reply);
      });
    },
    async lookup(name, version, request) {
      const [uplink, ...rest] = name.split('/');
      const u = byName.get(uplink ?? '');
      if (u === undefined || rest.length === 0) return undefined;
      const s: OciSource = { ctx, facts, uplink: u, repo: rest.join('/'), caller: callerOf(request) };
      try {
        // Resolved as a pull of it is, so the answer matches what the pull would get.
        const m = await resolveManifest(s, version);
        return subjectFacts(s, version, await manifestFacts(s, version, m));
      } catch (error) {
        if (isGatewayError(error) && error.code === 'GW_ERR_REGISTRY_NOT_FOUND') return undefined;
        throw error;
      }
    },
    invalidate: (name) => ctx.metadata.invalidate('oci', name),
    close: async () => {},
  };
}
