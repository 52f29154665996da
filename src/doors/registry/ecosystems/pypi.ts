import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError, isGatewayError } from '#core/errors';
import { type EntryMeta, makeEntry } from '../cache/entry.ts';
import { parseIntegrity } from '../cache/verify.ts';
import {
  type Caller,
  callerOf,
  decideMany,
  type RegistryContext,
  readBody,
  requireAllowed,
  sendEntry,
} from '../context.ts';
import { sendVerifiedFile } from '../files.ts';
import {
  auditInvalidUpstream,
  type Built,
  cachedDocument,
  cachedRaw,
  loadIndex,
  putIndex,
  type RefreshPoint,
} from '../metadata-flow.ts';
import { checkFileName, checkPypiName, entryNamed } from '../names.ts';
import { releaseTime, releaseTimes, renderJsonApi, uploadTimesByFile } from '../pypi/json-api.ts';
import {
  negotiate,
  normalizedVersion,
  type PypiFile,
  parseSimpleHtml,
  parseSimpleJson,
  renderSimpleHtml,
  renderSimpleJson,
  type SimpleProject,
} from '../pypi/simple.ts';
import { jsonUrlOf, sendPypiError, UPSTREAM_ACCEPT, upstreamStatus } from '../pypi/transport.ts';
import { VersionFacts } from '../version-facts.ts';
import type { UplinkClient } from '../uplink/client.ts';
import { UplinkSelector } from '../uplink/select.ts';
import type { EcosystemHandler } from './handler.ts';

interface PypiIndex {
  readonly uplink: string;
  readonly files: Readonly<Record<string, PypiFile>>;
}

/** Each version of `files` with its publication time: the upload of its newest file (see releaseTime). */
function versionTimes(files: Iterable<PypiFile>): Map<string, number | undefined> {
  const uploads = new Map<string, number[]>();
  for (const f of files) {
    const list = uploads.get(f.version) ?? [];
    const t = f.uploadTime ?? f.seenAt;
    list.push(t === undefined ? Number.NaN : Date.parse(t));
    uploads.set(f.version, list);
  }
  return new Map([...uploads].map(([version, list]) => [version, releaseTime(list)]));
}

/** PyPI: PEP 503/691 simple pages, the JSON API and verified file downloads. */
export function createPypiHandler(ctx: RegistryContext, uplinks: readonly UplinkClient[]): EcosystemHandler {
  const selector = new UplinkSelector(uplinks, 'pypi');
  const uplinkFor = (project: string) => {
    const u = selector.select(project);
    if (u === undefined)
      throw new GatewayError('GW_ERR_REGISTRY_NOT_FOUND', { message: `No uplink serves "${project}"` });
    return u;
  };
  const limit = () => ctx.config().cache.maxMetadataSize;
  const facts = new VersionFacts(ctx.core.db);

  /**
   * A file without an upload time in a release whose other files have one (an HTML-only uplink
   * whose JSON API does not list it yet: a wheel just added to an old release) is dated by when
   * the door first saw it, kept for good; ignored, it left the release as old as its other files.
   */
  async function dateUnknownFiles(project: string, p: SimpleProject): Promise<SimpleProject> {
    const timed = new Set(p.files.filter((f) => f.uploadTime !== undefined).map((f) => f.version));
    const unknown = p.files.filter((f) => f.uploadTime === undefined && timed.has(f.version));
    if (unknown.length === 0) return p;
    const now = new Date(ctx.clock.now()).toISOString();
    const seen = await facts.remember(
      'pypi',
      project,
      'first-seen',
      new Map(unknown.map((f) => [f.filename, now])),
    );
    return {
      ...p,
      files: p.files.map((f) => {
        const at = f.uploadTime === undefined ? seen.get(f.filename) : undefined;
        return at === undefined ? f : { ...f, seenAt: at };
      }),
    };
  }

  async function fetchProject(project: string, uplink: UplinkClient): Promise<SimpleProject> {
    const raw = await cachedRaw(
      ctx,
      `${ctx.metadata.indexKey('pypi', project)}|raw|${uplink.name}`,
      async () => {
        const res = await uplink.request({
          url: uplink.resolve(`${project}/`),
          headers: { accept: UPSTREAM_ACCEPT },
          what: project,
        });
        await upstreamStatus(res, project, uplink);
        const type = String(res.headers['content-type'] ?? '');
        const body = await readBody(res, limit(), project);
        return Buffer.concat([Buffer.from(`${type.includes('json') ? 'J' : 'H'}\n`), body]);
      },
    );
    const text = raw.subarray(2).toString('utf8');
    const page = uplink.resolve(`${project}/`);
    const parsed =
      raw[0] === 0x4a ? parseSimpleJson(text, project, page) : parseSimpleHtml(text, project, page);
    if (parsed.files.every((f) => f.uploadTime !== undefined)) return parsed;
    // PEP 503 HTML has no upload times: take them from the JSON API when the uplink has one.
    const times = await fetchJsonApi(project, uplink).then(
      uploadTimesByFile,
      () => new Map<string, string>(),
    );
    return {
      ...parsed,
      files: parsed.files.map((f) =>
        f.uploadTime !== undefined || !times.has(f.filename)
          ? f
          : { ...f, uploadTime: times.get(f.filename) as string },
      ),
    };
  }

  async function fetchJsonApi(project: string, uplink: UplinkClient): Promise<unknown> {
    const raw = await cachedRaw(
      ctx,
      `${ctx.metadata.indexKey('pypi', project)}|json|${uplink.name}`,
      async () => {
        const res = await uplink.request({
          url: jsonUrlOf(uplink, project),
          headers: { accept: 'application/json' },
          what: project,
        });
        await upstreamStatus(res, project, uplink);
        return readBody(res, limit(), project);
      },
    );
    return JSON.parse(raw.toString('utf8'));
  }

  async function decideVersions(
    project: string,
    uplink: UplinkClient,
    times: Map<string, number | undefined>,
    caller: Caller,
    now: number,
  ) {
    const subjects = [...times].map(([version, t]) => ({
      ecosystem: 'pypi' as const,
      name: project,
      version,
      registry: uplink.name,
      ...(t === undefined ? {} : { publishedAt: t }),
    }));
    const decisions = await decideMany(ctx, subjects, caller, {
      now,
      registry: uplink.name,
      kind: 'metadata',
    });
    return new Map(decisions.filter((d) => !d.allowed).map((d) => [d.subject.version, d.reason]));
  }

  async function buildSimple(
    project: string,
    uplink: UplinkClient,
    at: RefreshPoint,
    caller: Caller,
  ): Promise<Built<'json' | 'html'>> {
    let parsed: SimpleProject;
    try {
      parsed = await dateUnknownFiles(project, await fetchProject(project, uplink));
    } catch (error) {
      if (error instanceof SyntaxError) {
        await ctx.metadata.invalidate('pypi', project);
        auditInvalidUpstream(ctx, caller, `pypi:${project}`, uplink.name, error.message);
        throw new GatewayError('GW_ERR_REGISTRY_UPSTREAM_INVALID', {
          message: `Uplink sent an invalid project page for "${project}": ${error.message}`,
        });
      }
      throw error;
    }
    const times = versionTimes(parsed.files);
    const refused = await decideVersions(project, uplink, times, caller, at.cutoff);
    const options = { fileBase: `${at.base}/pypi/files/${project}/`, refused, mode: 'yanked' as const };
    const meta = (contentType: string): EntryMeta => ({
      contentType,
      fetchedAt: ctx.clock.now(),
      uplink: uplink.name,
      filtered: refused.size,
      total: times.size,
    });
    const [json, html] = await Promise.all([
      makeEntry(meta('application/vnd.pypi.simple.v1+json'), renderSimpleJson(parsed, options)),
      makeEntry(meta('text/html'), renderSimpleHtml(parsed, options)),
    ]);
    const index: PypiIndex = {
      uplink: uplink.name,
      files: Object.fromEntries(parsed.files.map((f) => [f.filename, f])),
    };
    await putIndex(ctx, ctx.metadata.indexKey('pypi', project), index);
    return { entries: { json, html } };
  }

  async function buildJsonApi(
    project: string,
    uplink: UplinkClient,
    at: RefreshPoint,
    caller: Caller,
  ): Promise<Built<'api'>> {
    let doc: unknown;
    let times: Map<string, number | undefined>;
    try {
      doc = await fetchJsonApi(project, uplink);
      times = releaseTimes(doc);
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      await ctx.metadata.invalidate('pypi', project);
      auditInvalidUpstream(ctx, caller, `pypi:${project}`, uplink.name, error.message);
      throw new GatewayError('GW_ERR_REGISTRY_UPSTREAM_INVALID', {
        message: `Uplink sent an invalid JSON API document for "${project}": ${error.message}`,
      });
    }
    const refused = await decideVersions(project, uplink, times, caller, at.cutoff);
    const text = renderJsonApi(
      doc as Record<string, unknown>,
      new Set(refused.keys()),
      `${at.base}/pypi/files/${project}/`,
    );
    const entry = await makeEntry(
      {
        contentType: 'application/json',
        fetchedAt: ctx.clock.now(),
        uplink: uplink.name,
        filtered: refused.size,
        total: times.size,
      },
      text,
    );
    return { entries: { api: entry } };
  }

  async function index(project: string, request: FastifyRequest): Promise<PypiIndex> {
    const key = ctx.metadata.indexKey('pypi', project);
    const uplink = uplinkFor(project);
    const load = () =>
      cachedDocument(ctx, request, {
        ecosystem: 'pypi',
        name: project,
        variant: 'json',
        uplink,
        build: (at, c) => buildSimple(project, uplink, at, c),
      });
    const loaded = await loadIndex(ctx, 'pypi', project, () => ctx.metadata.getJson<PypiIndex>(key), load);
    if (loaded === undefined)
      throw new GatewayError('GW_ERR_REGISTRY_NOT_FOUND', {
        message: `Project "${project}" is not available`,
      });
    return loaded;
  }

  const simple = async (request: FastifyRequest<{ Params: { project: string } }>, reply: FastifyReply) => {
    const given = request.params.project;
    const project = checkPypiName(given);
    // PEP 503: the normalized name is canonical and project URLs end with a slash.
    if (given !== project || !request.url.split('?')[0]?.endsWith('/'))
      return reply.redirect(`${ctx.config().publicUrl ?? ''}/pypi/simple/${project}/`, 301);
    const chosen = negotiate(request.headers.accept);
    if (chosen === undefined) {
      throw new GatewayError('GW_ERR_REQUEST_NOT_ACCEPTABLE', {
        message: 'Accept a PEP 691 JSON or PEP 503 HTML media type',
      });
    }
    const uplink = uplinkFor(project);
    const result = await cachedDocument(ctx, request, {
      ecosystem: 'pypi',
      name: project,
      variant: chosen.variant,
      uplink,
      build: (at, c) => buildSimple(project, uplink, at, c),
    });
    sendEntry(request, reply, result.entry, { stale: result.stale, policyVersion: result.policyVersion });
    if (reply.statusCode === 200)
      reply.header('content-type', chosen.variant === 'html' ? `${chosen.type}; charset=utf-8` : chosen.type);
    return reply;
  };

  const jsonApi = async (request: FastifyRequest<{ Params: { project: string } }>, reply: FastifyReply) => {
    const project = checkPypiName(request.params.project);
    const uplink = uplinkFor(project);
    const result = await cachedDocument(ctx, request, {
      ecosystem: 'pypi',
      name: project,
      variant: 'api',
      buildKey: 'api',
      uplink,
      build: (at, c) => buildJsonApi(project, uplink, at, c),
    });
    return sendEntry(request, reply, result.entry, {
      stale: result.stale,
      policyVersion: result.policyVersion,
    });
  };

  const file = async (
    request: FastifyRequest<{ Params: { project: string; filename: string } }>,
    reply: FastifyReply,
  ) => {
    const project = checkPypiName(request.params.project);
    const requested = checkFileName(request.params.filename);
    const isMetadata = requested.endsWith('.metadata');
    const filename = isMetadata ? requested.slice(0, -'.metadata'.length) : requested;
    const idx = await index(project, request);
    const f = entryNamed(idx.files, filename);
    const uplink = uplinkFor(project);
    if (f === undefined)
      throw new GatewayError('GW_ERR_REGISTRY_NOT_FOUND', {
        message: `No file "${filename}" in project "${project}"`,
      });
    // Judged as its release, which is as young as its newest file: the metadata hid it so.
    const published = versionTimes(Object.values(idx.files)).get(f.version);
    const subject = {
      ecosystem: 'pypi' as const,
      name: project,
      version: f.version,
      registry: uplink.name,
      ...(published === undefined ? {} : { publishedAt: published }),
    };
    await requireAllowed(ctx, subject, callerOf(request), {
      now: ctx.clock.now(),
      registry: uplink.name,
      kind: 'file',
    });
    const sha = isMetadata ? (f.coreMetadata === true ? undefined : f.coreMetadata?.sha256) : f.sha256;
    const digest = parseIntegrity(
      undefined,
      sha === undefined ? undefined : { algorithm: 'sha256', hex: sha },
    );
    if (digest === undefined) {
      throw new GatewayError(isMetadata ? 'GW_ERR_REGISTRY_NOT_FOUND' : 'GW_ERR_REGISTRY_INTEGRITY_MISSING', {
        message: `"${requested}" has no published sha256 digest`,
      });
    }
    return sendVerifiedFile(ctx, request, reply, {
      uplink,
      url: isMetadata ? `${f.url}.metadata` : f.url,
      digest,
      resource: `pypi:${project}@${f.version}`,
      contentType: isMetadata ? 'text/plain; charset=utf-8' : 'application/octet-stream',
    });
  };

  return {
    ecosystem: 'pypi',
    prefix: '/pypi',
    register(scope: FastifyInstance) {
      scope.setErrorHandler((error, _request, reply) => sendPypiError(ctx, reply, error));
      scope.setNotFoundHandler((request, reply) =>
        sendPypiError(
          ctx,
          reply,
          new GatewayError('GW_ERR_REGISTRY_NOT_FOUND', {
            message: `No PyPI endpoint "${request.method} ${request.url.split('?')[0] ?? ''}"`,
          }),
        ),
      );
      scope.addHook('onResponse', async (request, reply) => {
        const kind = request.url.startsWith('/pypi/files/') ? 'file' : 'metadata';
        const project = (request.params as { project?: string } | undefined)?.project;
        const registry = project === undefined ? 'none' : (selector.select(project)?.name ?? 'none');
        ctx.metrics.requests.inc({ registry, ecosystem: 'pypi', kind, status: reply.statusCode });
      });
      scope.get('/simple/', async (_request, reply) =>
        reply
          .type('text/html; charset=utf-8')
          .send(
            '<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.1"><title>Simple index</title></head><body><!-- Gatehouse lists projects on request only: ask for /pypi/simple/<project>/ --></body></html>\n',
          ),
      );
      scope.get('/simple/:project', simple);
      scope.get('/simple/:project/', simple);
      scope.get('/pypi/:project/json', jsonApi);
      scope.get('/files/:project/:filename', file);
    },
    async lookup(name, given, request) {
      const project = checkPypiName(name);
      // Decided as the door decides its files: by the PEP 440 normalized version.
      const version = normalizedVersion(given);
      try {
        const idx = await index(project, request);
        const times = versionTimes(Object.values(idx.files));
        if (!times.has(version)) return undefined;
        const published = times.get(version);
        return {
          registry: idx.uplink,
          version,
          ...(published === undefined ? {} : { publishedAt: published }),
        };
      } catch (error) {
        if (isGatewayError(error) && error.code === 'GW_ERR_REGISTRY_NOT_FOUND') return undefined;
        throw error;
      }
    },
    invalidate: (name) =>
      ctx.metadata.invalidate('pypi', name === undefined ? undefined : checkPypiName(name)),
    close: async () => {},
  };
}
