import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { GatewayError, isGatewayError } from '#core/errors';
import { compareGo, isGoPrerelease, parseGoVersion } from '#core/vulndb';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Digest } from '../cache/blob-cache.ts';
import { makeEntry } from '../cache/entry.ts';
import { callerOf, decideMany, type RegistryContext, requireAllowed, sendEntry } from '../context.ts';
import { sendUpstreamHead, sendVerifiedFile } from '../files.ts';
import { cachedGoZip, verifyGoMod, verifyGoZip } from '../go/verify.ts';
import {
  fetchInfo,
  type GoModuleVersions,
  loadModuleVersions,
  parseInfo,
  goPublicationTime,
} from '../go/module-index.ts';
import { sendTextError } from '../go/upstream.ts';
import { escapeGoPath, type GoFileRequest, type GoRequest, parseGoRequest } from '../go/paths.ts';
import { createSumdbProxy } from '../go/sumdb-proxy.ts';
import type { SumdbVerifier } from '../go/tlog.ts';
import { VersionFacts } from '../version-facts.ts';
import { auditInvalidUpstream, type Built, cachedDocument, type RefreshPoint } from '../metadata-flow.ts';
import type { Caller } from '../context.ts';
import type { UplinkClient } from '../uplink/client.ts';
import { UplinkSelector } from '../uplink/select.ts';
import type { EcosystemHandler } from './handler.ts';

/** Picks `@latest` as the go command would: the newest release, else the newest pre-release. */
export function pickLatest(versions: readonly string[]): string | undefined {
  const sorted = [...versions].sort(compareGo);
  const releases = sorted.filter((v) => !isGoPrerelease(parseGoVersion(v) as never));
  return releases.at(-1) ?? sorted.at(-1);
}

/** Go modules: the GOPROXY protocol with policy, first-seen times and `h1:` verification. */
export function createGoHandler(
  ctx: RegistryContext,
  uplinks: readonly UplinkClient[],
  checksumDb: UplinkClient | undefined,
  checksumDbKey?: SumdbVerifier,
): EcosystemHandler {
  const selector = new UplinkSelector(uplinks, 'go');
  const facts = new VersionFacts(ctx.core.db);
  const tmpDir = join(ctx.core.dataDir, 'registry', 'go-tmp');
  const registryOf = new WeakMap<FastifyRequest, string>();
  const sumdb = createSumdbProxy(ctx, checksumDb, checksumDbKey);
  /** Zip downloads in flight, by uplink and module version: concurrent cold misses share one. */
  const zipDownloads = new Map<string, Promise<Digest>>();
  const uplinkFor = (module: string) => {
    const u = selector.select(module);
    if (u === undefined)
      throw new GatewayError('GW_ERR_REGISTRY_NOT_FOUND', { message: `No uplink serves "${module}"` });
    return u;
  };

  async function load(module: string, uplink: UplinkClient, caller: Caller): Promise<GoModuleVersions> {
    try {
      const loaded = await loadModuleVersions(ctx, facts, uplink, module);
      if (loaded.dropped.length > 0)
        auditInvalidUpstream(
          ctx,
          caller,
          `go:${module}`,
          uplink.name,
          `Dropped invalid versions: ${loaded.dropped.join(', ')}`,
        );
      return loaded;
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      await ctx.metadata.invalidate('go', module);
      auditInvalidUpstream(ctx, caller, `go:${module}`, uplink.name, error.message);
      throw new GatewayError('GW_ERR_REGISTRY_UPSTREAM_INVALID', {
        message: `Uplink "${uplink.name}" sent invalid metadata for "${module}": ${error.message}`,
      });
    }
  }

  async function build(
    module: string,
    uplink: UplinkClient,
    at: RefreshPoint,
    caller: Caller,
  ): Promise<Built<'list' | 'latest'>> {
    const loaded = await load(module, uplink, caller);
    const subjects = Object.entries(loaded.versions).map(([version, t]) => ({
      ecosystem: 'go' as const,
      name: module,
      version,
      registry: uplink.name,
      ...(t === undefined ? {} : { publishedAt: t }),
    }));
    const decisions = await decideMany(ctx, subjects, caller, {
      now: at.cutoff,
      registry: uplink.name,
      kind: 'metadata',
    });
    const allowed = decisions.filter((d) => d.allowed).map((d) => d.subject.version);
    const refused = decisions.filter((d) => !d.allowed);
    const listed = allowed.filter((v) => v in loaded.versions).sort(compareGo);
    const latest = pickLatest(allowed);
    const notice =
      refused.length === 0
        ? undefined
        : `Gatehouse refused ${refused.length} of ${decisions.length} versions of "${module}": ${refused[0]?.reason ?? ''}`;
    const meta = (contentType: string) => ({
      contentType,
      fetchedAt: ctx.clock.now(),
      uplink: uplink.name,
      filtered: refused.length,
      total: decisions.length,
      ...(notice === undefined ? {} : { notice }),
    });
    const t = latest === undefined ? undefined : loaded.versions[latest];
    const latestDoc =
      latest === undefined
        ? (notice ?? `No version of "${module}" is available`)
        : JSON.stringify({
            Version: latest,
            ...(t === undefined ? {} : { Time: new Date(t).toISOString() }),
          });
    const [list, latestEntry] = await Promise.all([
      makeEntry(meta('text/plain; charset=utf-8'), listed.map((v) => `${v}\n`).join('')),
      makeEntry(meta(latest === undefined ? 'text/plain; charset=utf-8' : 'application/json'), latestDoc),
    ]);
    await ctx.metadata.putJson(ctx.metadata.indexKey('go', module), loaded, ctx.config().cache.metadataTtl);
    return { entries: { list, latest: latestEntry } };
  }

  const metadata = async (req: GoRequest, request: FastifyRequest, reply: FastifyReply) => {
    const uplink = uplinkFor(req.module);
    registryOf.set(request, uplink.name);
    const variant = req.kind === 'list' ? 'list' : 'latest';
    const result = await cachedDocument(ctx, request, {
      ecosystem: 'go',
      name: req.module,
      variant,
      uplink,
      build: (at, caller) => build(req.module, uplink, at, caller),
    });
    const { meta } = result.entry;
    if (variant === 'latest' && meta.contentType.startsWith('text/plain')) {
      throw new GatewayError(meta.total > 0 ? 'GW_ERR_POLICY_DENIED' : 'GW_ERR_REGISTRY_NOT_FOUND', {
        message: result.entry.identity.toString('utf8'),
      });
    }
    return sendEntry(request, reply, result.entry, {
      stale: result.stale,
      policyVersion: result.policyVersion,
    });
  };

  /** Publication time of one version: the module index, else its own `.info`, else first seen. */
  async function publishedAt(req: GoFileRequest, uplink: UplinkClient, request: FastifyRequest) {
    const index = await ctx.metadata.getJson<GoModuleVersions>(ctx.metadata.indexKey('go', req.module));
    if (index !== undefined && Object.hasOwn(index.versions, req.version)) return index.versions[req.version];
    const info = parseInfo(await fetchInfo(ctx, uplink, req.module, req.version), req.version);
    const now = ctx.clock.now();
    const seen = await facts.remember(
      'go',
      req.module,
      'first-seen',
      new Map([[req.version, new Date(now).toISOString()]]),
    );
    void request;
    const absentAt = await facts.get('go', req.module, req.version, 'absent-at');
    return goPublicationTime(info.Time, seen.get(req.version), absentAt, now);
  }

  /** Decides one version for a file request; throws the refusal. */
  async function decideVersion(
    req: GoFileRequest,
    uplink: UplinkClient,
    request: FastifyRequest,
    caller: Caller,
    now: number,
    kind: 'metadata' | 'file',
  ): Promise<void> {
    let t: number | undefined;
    try {
      t = await publishedAt(req, uplink, request);
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      auditInvalidUpstream(ctx, caller, `go:${req.module}@${req.version}`, uplink.name, error.message);
      throw new GatewayError('GW_ERR_REGISTRY_UPSTREAM_INVALID', {
        message: `Uplink "${uplink.name}" sent an invalid .info for "${req.module}@${req.version}": ${error.message}`,
      });
    }
    const subject = {
      ecosystem: 'go' as const,
      name: req.module,
      version: req.version,
      registry: uplink.name,
      ...(t === undefined ? {} : { publishedAt: t }),
    };
    await requireAllowed(ctx, subject, caller, { now, registry: uplink.name, kind });
  }

  /**
   * `.info` is version metadata: like `@v/list` its allowed answer is cached under the policy
   * version and age cut-off, so a hit is served from bytes and the decision (audited when made)
   * is not repeated for every request of the go command.
   */
  const info = async (req: GoFileRequest, request: FastifyRequest, reply: FastifyReply) => {
    const uplink = uplinkFor(req.module);
    registryOf.set(request, uplink.name);
    const result = await cachedDocument(ctx, request, {
      ecosystem: 'go',
      name: req.module,
      variant: `info|${req.version}`,
      buildKey: `info|${req.version}`,
      uplink,
      build: async (at, caller) => {
        await decideVersion(req, uplink, request, caller, at.cutoff, 'metadata');
        const body = await fetchInfo(ctx, uplink, req.module, req.version);
        const entry = await makeEntry(
          {
            contentType: 'application/json',
            fetchedAt: ctx.clock.now(),
            uplink: uplink.name,
            filtered: 0,
            total: 1,
          },
          body,
        );
        return { entries: { [`info|${req.version}`]: entry } };
      },
    });
    return sendEntry(request, reply, result.entry, {
      stale: result.stale,
      policyVersion: result.policyVersion,
    });
  };

  const file = async (req: GoFileRequest, request: FastifyRequest, reply: FastifyReply) => {
    if (req.kind === 'info') return info(req, request, reply);
    const uplink = uplinkFor(req.module);
    registryOf.set(request, uplink.name);
    // A go.mod holds no code, and minimal version selection reads the go.mod of every version a
    // requirement names, selected or not (unpruned graphs, `go mod tidy`): refusing it would fail
    // every build whose graph mentions a refused version, even one that selects the fixed
    // version. It is served verified; the version's `.info` and `.zip` are still refused.
    if (req.kind !== 'mod')
      await decideVersion(req, uplink, request, callerOf(request), ctx.clock.now(), 'file');
    const base = `${escapeGoPath(req.module)}/@v/${escapeGoPath(req.version)}`;
    const v = {
      ctx,
      facts,
      checksumDb,
      ...(checksumDbKey === undefined ? {} : { checksumDbKey }),
      uplink,
      module: req.module,
      version: req.version,
      caller: callerOf(request),
    };
    if (req.kind === 'mod') {
      const body = await verifyGoMod(v, uplink.resolve(`${base}.mod`));
      return reply
        .type('text/plain; charset=utf-8')
        .header('cache-control', 'public, max-age=31536000, immutable')
        .send(body);
    }
    const zip = {
      uplink,
      url: uplink.resolve(`${base}.zip`),
      resource: `go:${req.module}@${req.version}`,
      contentType: 'application/zip',
    };
    // A HEAD downloads nothing: a verified zip in the cache answers, else the uplink's HEAD (the
    // zip is hashed only when a GET downloads it).
    if (request.method === 'HEAD') {
      const cached = await cachedGoZip(v);
      if (cached === undefined) return sendUpstreamHead(reply, zip);
      return sendVerifiedFile(ctx, request, reply, { ...zip, digest: cached });
    }
    const key = `${uplink.name}\u0000${req.module}@${req.version}`;
    let download = zipDownloads.get(key);
    if (download === undefined) {
      download = verifyGoZip(v, zip.url, tmpDir).finally(() => zipDownloads.delete(key));
      zipDownloads.set(key, download);
    }
    const digest = await download;
    return sendVerifiedFile(ctx, request, reply, { ...zip, digest });
  };

  return {
    ecosystem: 'go',
    prefix: '/go',
    register(scope: FastifyInstance) {
      scope.setErrorHandler((error, _request, reply) =>
        sendTextError(ctx, reply, error, { reasonPhrase: false }),
      );
      const notFound = (request: FastifyRequest) =>
        new GatewayError('GW_ERR_REGISTRY_NOT_FOUND', {
          message: `No GOPROXY endpoint "${request.method} ${request.url.split('?')[0] ?? ''}"`,
        });
      scope.setNotFoundHandler((request, reply) =>
        sendTextError(ctx, reply, notFound(request), { reasonPhrase: false }),
      );
      scope.addHook('onResponse', async (request, reply) => {
        const kind = request.url.endsWith('.zip') || request.url.endsWith('.mod') ? 'file' : 'metadata';
        ctx.metrics.requests.inc({
          registry: registryOf.get(request) ?? 'none',
          ecosystem: 'go',
          kind,
          status: reply.statusCode,
        });
      });
      scope.get('/*', async (request, reply) => {
        const path = (request.params as { '*': string })['*'];
        // The go command asks whether the proxy serves the checksum database GOSUMDB names.
        if (path.startsWith('sumdb/')) return sumdb.serve(path.slice('sumdb/'.length), request, reply);
        const req = parseGoRequest(path);
        if (req === undefined) throw notFound(request);
        if (req.kind === 'list' || req.kind === 'latest') return metadata(req, request, reply);
        return file(req as GoFileRequest, request, reply);
      });
    },
    async lookup(name, version, request) {
      const uplink = uplinkFor(name);
      try {
        const t = await publishedAt(
          { kind: 'info', module: name, escaped: escapeGoPath(name), version },
          uplink,
          request,
        );
        return { registry: uplink.name, ...(t === undefined ? {} : { publishedAt: t }) };
      } catch (error) {
        if (isGatewayError(error) && error.code === 'GW_ERR_REGISTRY_NOT_FOUND') return undefined;
        throw error;
      }
    },
    invalidate: (name) => ctx.metadata.invalidate('go', name),
    close: async () => {
      await rm(tmpDir, { recursive: true, force: true });
    },
  };
}
