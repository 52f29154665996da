import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { GatewayError, isGatewayError } from '#core/errors';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Digest } from '../cache/blob-cache.ts';
import { identityOf, makeEntry, type MetadataEntry } from '../cache/entry.ts';
import {
  type Caller,
  callerOf,
  decideMany,
  isUplinkFailure,
  type RegistryContext,
  requireAllowed,
  sendEntry,
} from '../context.ts';
import { sendVerifiedFile } from '../files.ts';
import { fetchSmall, sendTextError, upstreamFailure } from '../go/upstream.ts';
import { plausibleTime, publicationTime, VersionFacts } from '../version-facts.ts';
import {
  latestAndRelease,
  mavenTimestamp,
  parseMavenMetadata,
  parseSnapshotMetadata,
  renderMavenMetadata,
  snapshotBuild,
} from '../maven/metadata.ts';
import { type MavenRequest, parseMavenPath, SIDECARS, type Sidecar } from '../maven/paths.ts';
import {
  auditInvalidUpstream,
  type Built,
  cachedDocument,
  cachedRaw,
  type RefreshPoint,
} from '../metadata-flow.ts';
import type { UplinkClient } from '../uplink/client.ts';
import { UplinkSelector } from '../uplink/select.ts';
import type { EcosystemHandler } from './handler.ts';

type MetadataRequest = Extract<MavenRequest, { kind: 'metadata' }>;
type FileRequest = Extract<MavenRequest, { kind: 'file' }>;
type Variant = 'xml' | Sidecar;

/** Publication times by version: facts of the uplink, the same under every policy. */
interface MavenIndex {
  readonly uplink: string;
  readonly times: Readonly<Record<string, number | undefined>>;
}

/** A snapshot version's own metadata as read, and the time of each build it names. */
interface SnapshotRead {
  readonly raw: Buffer;
  /** Build → its publication time, newest build first. */
  readonly builds: ReadonlyMap<string, number | undefined>;
}

const PARALLEL = 8;
/** The Maven 2 repository layout is from 2005: an earlier build time is not believed. */
const EARLIEST = Date.parse('2005-01-01T00:00:00Z');
/** A snapshot's metadata larger than this is not kept as its last allowed copy. */
const MAX_KEPT_SNAPSHOT_DOC = 65_536;
/** A snapshot build's time: the time its name claims, bounded as `publicationTime` bounds it. */
const datedBuild = (
  name: string,
  firstSeen: string | undefined,
  absentAt: string | undefined,
  now: number,
): number | undefined => publicationTime(snapshotBuild(name)?.claimed, firstSeen, absentAt, now, EARLIEST);

const notFound = (e: unknown) => isGatewayError(e) && e.code === 'GW_ERR_REGISTRY_NOT_FOUND';

/** Maven 2 repositories: filtered `maven-metadata.xml`, POM times, verified artifacts. */
export function createMavenHandler(ctx: RegistryContext, uplinks: readonly UplinkClient[]): EcosystemHandler {
  const selector = new UplinkSelector(uplinks, 'maven');
  const facts = new VersionFacts(ctx.core.db);
  const registryOf = new WeakMap<FastifyRequest, string>();
  const uplinkFor = (ga: string) => {
    const u = selector.select(ga);
    if (u === undefined)
      throw new GatewayError('GW_ERR_REGISTRY_NOT_FOUND', { message: `No uplink serves "${ga}"` });
    return u;
  };
  const limit = () => ctx.config().cache.maxMetadataSize;

  /**
   * Publication times from each POM's `Last-Modified` (kept for good), else the first-seen time.
   * A version the metadata does not list (`unlisted`) must exist: when its POM is not there, it
   * is not found and no first-seen time is recorded for it.
   */
  async function times(
    ga: string,
    base: string,
    artifactId: string,
    versions: readonly string[],
    uplink: UplinkClient,
    unlisted = false,
  ) {
    const known = await facts.all('maven', ga, 'published');
    const missing = versions.filter((v) => !known.has(v));
    const found = new Map<string, string>();
    const absent: string[] = [];
    for (let i = 0; i < missing.length; i += PARALLEL) {
      await Promise.all(
        missing.slice(i, i + PARALLEL).map(async (v) => {
          const res = await uplink.request({
            url: uplink.resolve(`${base}/${v}/${artifactId}-${v}.pom`),
            method: 'HEAD',
            what: `${ga}:${v}`,
          });
          await res.body.dump().catch(() => undefined);
          if (res.status === 404 || res.status === 410) absent.push(v);
          const t = Date.parse(String(res.headers['last-modified'] ?? ''));
          if (res.status === 200 && Number.isFinite(t) && t <= ctx.clock.now() + 300_000)
            found.set(v, new Date(t).toISOString());
        }),
      );
    }
    if (unlisted && absent.length > 0)
      throw new GatewayError('GW_ERR_REGISTRY_NOT_FOUND', {
        message: `"${ga}:${absent[0]}" was not found on uplink "${uplink.name}"`,
        details: { uplink: uplink.name },
      });
    const now = new Date(ctx.clock.now()).toISOString();
    const stored = await facts.remember('maven', ga, 'published', found);
    const seen = await facts.remember(
      'maven',
      ga,
      'first-seen',
      new Map(missing.filter((v) => !stored.has(v)).map((v) => [v, now])),
    );
    const out: Record<string, number | undefined> = {};
    for (const v of versions) {
      const t = Date.parse(stored.get(v) ?? seen.get(v) ?? '');
      out[v] = Number.isFinite(t) ? t : undefined;
    }
    return out;
  }

  /** A metadata document and its regenerated checksum sidecars. */
  async function rendered(
    xml: Buffer,
    uplink: UplinkClient,
    filtered: number,
    total: number,
  ): Promise<Record<Variant, MetadataEntry>> {
    const meta = (contentType: string) => ({
      contentType,
      fetchedAt: ctx.clock.now(),
      uplink: uplink.name,
      filtered,
      total,
    });
    const entries = { xml: await makeEntry(meta('text/xml'), xml) } as Record<Variant, MetadataEntry>;
    for (const s of SIDECARS)
      entries[s] = await makeEntry(meta('text/plain'), createHash(s).update(xml).digest('hex'));
    return entries;
  }

  /** Throws GW_ERR_REGISTRY_XML_INVALID (audited) for upstream metadata that failed to parse. */
  async function invalidXml(
    error: unknown,
    ga: string,
    uplink: UplinkClient,
    caller: Caller,
  ): Promise<never> {
    if (!(error instanceof SyntaxError)) throw error;
    await ctx.metadata.invalidate('maven', ga);
    auditInvalidUpstream(ctx, caller, `maven:${ga}`, uplink.name, error.message);
    throw new GatewayError('GW_ERR_REGISTRY_XML_INVALID', {
      message: `Uplink "${uplink.name}" sent unsafe or invalid maven-metadata.xml for "${ga}": ${error.message}`,
    });
  }

  /**
   * A snapshot version's own metadata, read through the raw cache, and the time of each build it
   * names: the time the build's name claims, whoever deployed it chose that, so it is bounded by
   * the door's own reads: a build missing from the previous read of this document is no older
   * than that read (`absent-at`), as Go versions are.
   */
  async function readSnapshot(
    req: { groupId: string; artifactId: string; base: string; version: string },
    uplink: UplinkClient,
    caller: Caller,
  ): Promise<SnapshotRead> {
    const ga = `${req.groupId}:${req.artifactId}`;
    // Set when this call read the document from upstream (not from the cache).
    let fetchedAt: number | undefined;
    const raw = await cachedRaw(
      ctx,
      `${ctx.metadata.indexKey('maven', ga)}|snapshot|${req.version}|${uplink.name}`,
      async () => {
        fetchedAt = ctx.clock.now();
        const url = uplink.resolve(`${req.base}/${req.version}/maven-metadata.xml`);
        return (await fetchSmall(uplink, url, `${ga}:${req.version}`, limit())).body;
      },
    );
    let builds: readonly string[];
    try {
      ({ builds } = parseSnapshotMetadata(raw.toString('utf8'), req.groupId, req.artifactId, req.version));
    } catch (error) {
      return invalidXml(error, ga, uplink, caller);
    }
    const now = ctx.clock.now();
    const { seen, absent } = await facts.observe('maven', ga, req.version, { now, fetchedAt }, builds);
    return { raw, builds: new Map(builds.map((b) => [b, datedBuild(b, seen.get(b), absent.get(b), now)])) };
  }

  /** The time of a build some earlier read of its snapshot's metadata named; undefined if none did. */
  async function knownBuildTime(ga: string, name: string): Promise<number | undefined> {
    const f = await facts.of('maven', ga, name);
    if (!f.has('first-seen')) return undefined;
    return datedBuild(name, f.get('first-seen'), f.get('absent-at'), ctx.clock.now());
  }

  /**
   * A snapshot version's own metadata (its timestamped builds), decided by its newest build:
   * served as the uplink sent it when that build passes policy; else the copy last served, while
   * its build still passes (a rebuild too new for the minimum age does not replace a build that
   * passed); else refused.
   */
  async function buildSnapshot(
    req: MetadataRequest & { version: string },
    uplink: UplinkClient,
    at: RefreshPoint,
    request: FastifyRequest,
    caller: Caller,
  ): Promise<Built<string>> {
    const ga = `${req.groupId}:${req.artifactId}`;
    const decision = { now: at.cutoff, kind: 'metadata' } as const;
    const read = await readSnapshot(req, uplink, caller);
    const [newest, newestTime] = [...read.builds][0] ?? [];
    let raw = read.raw;
    let filtered = 0;
    try {
      await decideVersion(req, request, decision, newestTime);
      if (newest !== undefined && raw.length <= MAX_KEPT_SNAPSHOT_DOC)
        await facts.set('maven', ga, req.version, 'snapshot-doc', raw.toString('utf8'));
    } catch (error) {
      if (!isGatewayError(error) || error.code !== 'GW_ERR_POLICY_DENIED' || newest === undefined)
        throw error;
      const kept = await facts.get('maven', ga, req.version, 'snapshot-doc');
      const [keptBuild] =
        kept === undefined
          ? []
          : parseSnapshotMetadata(kept, req.groupId, req.artifactId, req.version).builds;
      if (kept === undefined || keptBuild === undefined || keptBuild === newest) throw error;
      const time = await knownBuildTime(ga, keptBuild);
      await decideVersion(req, request, decision, time ?? ctx.clock.now()).catch(() => Promise.reject(error));
      raw = Buffer.from(kept);
      filtered = 1;
    }
    const entries = await rendered(raw, uplink, filtered, 1 + filtered);
    return {
      entries: Object.fromEntries(Object.entries(entries).map(([k, e]) => [`${req.version}|${k}`, e])),
    };
  }

  /**
   * When the uplink received a file (its `Last-Modified`, set by the repository on upload), or
   * now when it does not say. For a snapshot without unique versions (Maven 2
   * `uniqueVersion=false`): each deploy overwrites `x-1.0-SNAPSHOT.jar` and its metadata names
   * no build, so neither the version's first time nor the metadata dates the code served.
   */
  async function uploadedAt(uplink: UplinkClient, req: FileRequest, what: string): Promise<number> {
    const res = await uplink.request({
      url: uplink.resolve(`${req.base}/${req.version}/${req.file}`),
      method: 'HEAD',
      what,
    });
    await res.body.dump().catch(() => undefined);
    if (res.status !== 200) await upstreamFailure(res, uplink, what);
    const now = ctx.clock.now();
    return plausibleTime(String(res.headers['last-modified'] ?? ''), now, EARLIEST) ?? now;
  }

  /**
   * The time of the snapshot build a file in a snapshot folder belongs to: the build its name
   * carries, or for a plain name (`x-1.0-SNAPSHOT.jar`) the newest build. A build no metadata the
   * door read has named is as old as it claims when older than the newest build, else as new as
   * now. A plain name when no metadata names a build (a snapshot without unique versions) is
   * dated by its own upload. Undefined for a build name when the snapshot has no metadata of its
   * own upstream.
   */
  async function snapshotFileTime(req: FileRequest, uplink: UplinkClient, caller: Caller) {
    const ga = `${req.groupId}:${req.artifactId}`;
    const name = req.file.slice(req.artifactId.length + 1);
    const asked = [...name.matchAll(/-\d{8}\.\d{6}-\d+/g)]
      .map((m) => name.slice(0, (m.index ?? 0) + m[0].length))
      .find((b) => snapshotBuild(b)?.version === req.version);
    let read: SnapshotRead;
    try {
      read = await readSnapshot({ ...req, version: req.version }, uplink, caller);
    } catch (error) {
      // Without metadata of its own, a plain-named file is all there is of the snapshot.
      if (notFound(error))
        return asked === undefined ? uploadedAt(uplink, req, `${ga}:${req.version}/${req.file}`) : undefined;
      // The uplink is down: a build an earlier read named keeps the time it had.
      const known =
        isUplinkFailure(error) && asked !== undefined ? await knownBuildTime(ga, asked) : undefined;
      if (known === undefined) throw error;
      return known;
    }
    const [newest, newestTime] = [...read.builds][0] ?? [];
    if (asked === undefined)
      return newest === undefined ? uploadedAt(uplink, req, `${ga}:${req.version}/${req.file}`) : newestTime;
    if (read.builds.has(asked)) return read.builds.get(asked);
    const known = await knownBuildTime(ga, asked);
    if (known !== undefined) return known;
    const now = ctx.clock.now();
    const older =
      newest !== undefined && (snapshotBuild(asked)?.claimed ?? '') < (snapshotBuild(newest)?.claimed ?? '');
    return older ? (datedBuild(asked, undefined, undefined, now) ?? now) : now;
  }

  async function build(
    req: MetadataRequest,
    uplink: UplinkClient,
    at: RefreshPoint,
    caller: Caller,
  ): Promise<Built<Variant>> {
    const ga = `${req.groupId}:${req.artifactId}`;
    const raw = await cachedRaw(ctx, `${ctx.metadata.indexKey('maven', ga)}|raw|${uplink.name}`, async () => {
      const { body } = await fetchSmall(
        uplink,
        uplink.resolve(`${req.base}/maven-metadata.xml`),
        ga,
        limit(),
      );
      return body;
    });
    let parsed;
    try {
      parsed = parseMavenMetadata(raw.toString('utf8'), req.groupId, req.artifactId);
    } catch (error) {
      return invalidXml(error, ga, uplink, caller);
    }
    if (parsed.plugins === true) return { entries: await rendered(raw, uplink, 0, 0) };
    const t = await times(ga, req.base, req.artifactId, parsed.versions, uplink);
    const subjects = parsed.versions.map((version) => ({
      ecosystem: 'maven' as const,
      name: ga,
      version,
      registry: uplink.name,
      ...(t[version] === undefined ? {} : { publishedAt: t[version] }),
    }));
    const decisions = await decideMany(ctx, subjects, caller, {
      now: at.cutoff,
      registry: uplink.name,
      kind: 'metadata',
    });
    const allowed = decisions.filter((d) => d.allowed).map((d) => d.subject.version);
    const newest = Math.max(0, ...allowed.map((v) => t[v] ?? 0));
    const xml = Buffer.from(
      renderMavenMetadata(
        { ...parsed, versions: allowed },
        newest > 0 ? mavenTimestamp(newest) : (parsed.lastUpdated ?? mavenTimestamp(at.cutoff)),
      ),
    );
    const entries = await rendered(xml, uplink, decisions.length - allowed.length, decisions.length);
    const index: MavenIndex = { uplink: uplink.name, times: t };
    await ctx.metadata.putJson(ctx.metadata.indexKey('maven', ga), index, ctx.config().cache.metadataTtl);
    return { entries };
  }

  async function index(req: { groupId: string; artifactId: string; base: string }, request: FastifyRequest) {
    const ga = `${req.groupId}:${req.artifactId}`;
    const key = ctx.metadata.indexKey('maven', ga);
    const cached = await ctx.metadata.getJson<MavenIndex>(key);
    if (cached !== undefined) return cached;
    const uplink = uplinkFor(ga);
    await cachedDocument(ctx, request, {
      ecosystem: 'maven',
      name: ga,
      variant: 'xml',
      uplink,
      build: (at, c) => build({ kind: 'metadata', ...req }, uplink, at, c),
    });
    return (await ctx.metadata.getJson<MavenIndex>(key)) ?? { uplink: uplink.name, times: {} };
  }

  const metadata = async (req: MetadataRequest, request: FastifyRequest, reply: FastifyReply) => {
    const ga = `${req.groupId}:${req.artifactId}`;
    const uplink = uplinkFor(ga);
    registryOf.set(request, uplink.name);
    const { version } = req;
    const result =
      version === undefined
        ? await cachedDocument(ctx, request, {
            ecosystem: 'maven',
            name: ga,
            variant: req.sidecar ?? 'xml',
            uplink,
            build: (at, c) => build(req, uplink, at, c),
          })
        : await cachedDocument(ctx, request, {
            ecosystem: 'maven',
            name: ga,
            variant: `${version}|${req.sidecar ?? 'xml'}`,
            buildKey: `snapshot|${version}`,
            uplink,
            build: (at, c) => buildSnapshot({ ...req, version }, uplink, at, request, c),
          });
    return sendEntry(request, reply, result.entry, {
      stale: result.stale,
      policyVersion: result.policyVersion,
    });
  };

  /**
   * Decides one version of an artifact (its time from the metadata, else its POM; for a snapshot
   * version never before `buildTime`, the time of the build asked for); throws the refusal.
   */
  async function decideVersion(
    req: { groupId: string; artifactId: string; base: string; version: string },
    request: FastifyRequest,
    at: { readonly now: number; readonly kind: 'metadata' | 'file' },
    buildTime?: number,
  ): Promise<void> {
    const { version } = req;
    const ga = `${req.groupId}:${req.artifactId}`;
    const idx = await index(req, request).catch((e: unknown) =>
      notFound(e) ? undefined : Promise.reject(e),
    );
    const uplink = uplinkFor(ga);
    const listed =
      idx !== undefined && Object.hasOwn(idx.times, version)
        ? idx.times[version]
        : (await times(ga, req.base, req.artifactId, [version], uplink, true))[version];
    const t = buildTime === undefined ? listed : Math.max(listed ?? 0, buildTime);
    const subject = {
      ecosystem: 'maven' as const,
      name: ga,
      version,
      registry: uplink.name,
      ...(t === undefined ? {} : { publishedAt: t }),
    };
    await requireAllowed(ctx, subject, callerOf(request), { ...at, registry: uplink.name });
  }

  /** The strongest checksum the upstream publishes next to a file (sha512, sha256, then sha1). */
  async function upstreamDigest(uplink: UplinkClient, url: string, what: string): Promise<Digest> {
    for (const algorithm of ['sha512', 'sha256', 'sha1'] as const) {
      try {
        const { body } = await fetchSmall(uplink, `${url}.${algorithm}`, `${what}.${algorithm}`, 4096);
        const hex = /^[0-9a-fA-F]+/.exec(body.toString('utf8').trim())?.[0]?.toLowerCase();
        if (hex !== undefined && hex.length === { sha512: 128, sha256: 64, sha1: 40 }[algorithm])
          return { algorithm, hex };
      } catch (error) {
        if (!notFound(error)) throw error;
      }
    }
    // Without any sidecar, a file that is not there either (a classifier the artifact lacks) is
    // not found, as the uplink says, rather than refused for a missing checksum.
    const head = await uplink.request({ url, method: 'HEAD', what });
    await head.body.dump().catch(() => undefined);
    if (head.status === 404 || head.status === 410) await upstreamFailure(head, uplink, what);
    throw new GatewayError('GW_ERR_REGISTRY_INTEGRITY_MISSING', {
      message: `"${what}" has no checksum sidecar upstream`,
    });
  }

  const file = async (req: FileRequest, request: FastifyRequest, reply: FastifyReply) => {
    const ga = `${req.groupId}:${req.artifactId}`;
    const uplink = uplinkFor(ga);
    registryOf.set(request, uplink.name);
    if (req.version === 'LATEST' || req.version === 'RELEASE') {
      // From the filtered metadata of the policy in force (cached per policy version), not the
      // package index, which the last metadata build wrote under whatever policy it had.
      const result = await cachedDocument(ctx, request, {
        ecosystem: 'maven',
        name: ga,
        variant: 'xml',
        uplink,
        build: (at, c) =>
          build(
            { kind: 'metadata', groupId: req.groupId, artifactId: req.artifactId, base: req.base },
            uplink,
            at,
            c,
          ),
      });
      const passing = parseMavenMetadata(
        identityOf(result.entry).toString('utf8'),
        req.groupId,
        req.artifactId,
      );
      const idx = latestAndRelease(passing.versions);
      const resolved = req.version === 'LATEST' ? idx.latest : idx.release;
      if (resolved === undefined)
        throw new GatewayError('GW_ERR_REGISTRY_NOT_FOUND', {
          message: `"${ga}" has no ${req.version} version that passes policy`,
        });
      const name = `${req.artifactId}-${resolved}${req.file.slice(`${req.artifactId}-${req.version}`.length)}`;
      return reply.redirect(
        `${ctx.config().publicUrl ?? ''}/maven/${req.base}/${resolved}/${name}${req.sidecar === undefined ? '' : `.${req.sidecar}`}`,
        302,
      );
    }
    const buildTime = req.version.endsWith('-SNAPSHOT')
      ? await snapshotFileTime(req, uplink, callerOf(request))
      : undefined;
    await decideVersion(req, request, { now: ctx.clock.now(), kind: 'file' }, buildTime);
    const url = uplink.resolve(`${req.base}/${req.version}/${req.file}`);
    // The digest a file was last checked against, kept for staleTtl: while the uplink is down,
    // a file in the blob cache is served against it, and its sidecars are hashed from it.
    const kept = `${ctx.metadata.indexKey('maven', ga)}|digest|${req.version}/${req.file}`;
    const offline = async (error: unknown): Promise<Digest> => {
      if (!isUplinkFailure(error)) throw error;
      const m = /^(sha512|sha256|sha1):([0-9a-f]+)$/.exec(
        (await ctx.core.cache.get(kept))?.toString('utf8') ?? '',
      );
      const d = m === null ? undefined : ({ algorithm: m[1], hex: m[2] } as Digest);
      if (d === undefined || (await ctx.blobs.size(d)) === undefined) throw error;
      return d;
    };
    if (req.sidecar !== undefined) {
      const algorithm = req.sidecar;
      const body = await fetchSmall(
        uplink,
        `${url}.${algorithm}`,
        `${ga}:${req.file}.${algorithm}`,
        4096,
      ).then(
        (r) => r.body,
        async (error: unknown) => {
          const d = await offline(error);
          const hash = createHash(algorithm);
          await pipeline(createReadStream(ctx.blobs.path(d)), hash);
          return Buffer.from(hash.digest('hex'));
        },
      );
      return reply.type('text/plain').send(body);
    }
    const digest = await upstreamDigest(uplink, url, `${ga}:${req.version}/${req.file}`).then(async (d) => {
      await ctx.core.cache.set(kept, Buffer.from(`${d.algorithm}:${d.hex}`), {
        ttlMs: ctx.config().cache.staleTtl,
      });
      return d;
    }, offline);
    return sendVerifiedFile(ctx, request, reply, {
      uplink,
      url,
      digest,
      resource: `maven:${ga}@${req.version}`,
      contentType: req.file.endsWith('.pom') ? 'text/xml' : 'application/java-archive',
    });
  };

  return {
    ecosystem: 'maven',
    prefix: '/maven',
    register(scope: FastifyInstance) {
      scope.setErrorHandler((error, _request, reply) =>
        sendTextError(ctx, reply, error, { reasonPhrase: true }),
      );
      const missing = (request: FastifyRequest) =>
        new GatewayError('GW_ERR_REGISTRY_NOT_FOUND', {
          message: `No Maven repository path "${request.method} ${request.url.split('?')[0] ?? ''}"`,
        });
      scope.setNotFoundHandler((request, reply) =>
        sendTextError(ctx, reply, missing(request), { reasonPhrase: true }),
      );
      scope.addHook('onResponse', async (request, reply) => {
        ctx.metrics.requests.inc({
          registry: registryOf.get(request) ?? 'none',
          ecosystem: 'maven',
          kind: request.url.includes('maven-metadata.xml') ? 'metadata' : 'file',
          status: reply.statusCode,
        });
      });
      scope.get('/*', async (request, reply) => {
        const req = parseMavenPath((request.params as { '*': string })['*']);
        if (req === undefined) throw missing(request);
        return req.kind === 'metadata' ? metadata(req, request, reply) : file(req, request, reply);
      });
      scope.put('/*', async () => {
        throw new GatewayError('GW_ERR_REGISTRY_UNSUPPORTED', {
          message: 'Deploying through the Gatehouse proxy is not supported',
        });
      });
    },
    async lookup(name, version, request) {
      const [g, a] = name.split(':');
      if (g === undefined || a === undefined) return undefined;
      const base = `${g.replace(/\./g, '/')}/${a}`;
      const idx = await index({ groupId: g, artifactId: a, base }, request).catch((e: unknown) =>
        notFound(e) ? undefined : Promise.reject(e),
      );
      if (idx === undefined || !(version in idx.times)) return undefined;
      const t = idx.times[version];
      return { registry: idx.uplink, ...(t === undefined ? {} : { publishedAt: t }) };
    },
    invalidate: (name) => ctx.metadata.invalidate('maven', name),
    close: async () => {},
  };
}
