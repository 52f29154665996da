/**
 * Manifests of an OCI uplink: fetched with every manifest media type accepted, kept byte for
 * byte, checked against the digest they are addressed by (and the upstream's
 * `Docker-Content-Digest`), cached by digest (immutable), with tags resolved to digests for
 * `metadataTtl`. Publication time comes from the image config's `created`, or for an index from
 * its newest image, or else from the first time Gatehouse saw the digest.
 */
import { createHash } from 'node:crypto';
import { GatewayError, isGatewayError } from '#core/errors';
import { audit, type Caller, isUplinkFailure, readBody, type RegistryContext } from '../context.ts';
import { upstreamFailure } from '../go/upstream.ts';
import type { VersionFacts } from '../version-facts.ts';
import type { UplinkClient } from '../uplink/client.ts';
import { isDigest } from './paths.ts';

export const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
] as const;

const MAX_MANIFEST = 4 << 20;
const MAX_CONFIG = 1 << 20;
const MAX_CHILDREN = 16;
/** The first Docker release (2013-03-20); an earlier `created` is a reproducible-build placeholder. */
const EARLIEST = Date.parse('2013-03-20T00:00:00Z');

export interface Manifest {
  readonly digest: string;
  readonly mediaType: string;
  readonly bytes: Buffer;
}

export interface OciSource {
  readonly ctx: RegistryContext;
  readonly facts: VersionFacts;
  readonly uplink: UplinkClient;
  readonly repo: string;
  readonly caller: Caller;
}

const nameOf = (s: OciSource) => `${s.uplink.name}/${s.repo}`;
const keyOf = (s: OciSource, what: string) => `${s.ctx.metadata.indexKey('oci', nameOf(s))}|${what}`;
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const scope = (s: OciSource) => ({ 'x-oci-scope': `repository:${s.repo}:pull` });

function mismatch(s: OciSource, reference: string, expected: string, actual: string): GatewayError {
  s.ctx.metrics.integrityFailures.inc({ registry: s.uplink.name });
  audit(s.ctx, {
    actor: s.caller.actor,
    action: 'registry.integrity.mismatch',
    resource: `oci:${nameOf(s)}@${reference}`,
    decision: 'deny',
    reason: `Manifest digest ${actual} does not match ${expected}`,
    clientIp: s.caller.clientIp,
    requestId: s.caller.requestId,
    details: { uplink: s.uplink.name, expected, actual },
  });
  return new GatewayError('GW_ERR_REGISTRY_INTEGRITY_MISMATCH', {
    message: `Manifest "${nameOf(s)}:${reference}" from uplink "${s.uplink.name}" has digest "${actual}", expected "${expected}"`,
  });
}

async function fetchManifest(s: OciSource, reference: string): Promise<Manifest> {
  const what = `${nameOf(s)}:${reference}`;
  const res = await s.uplink.request({
    url: s.uplink.resolve(`v2/${s.repo}/manifests/${reference}`),
    what,
    headers: { accept: MANIFEST_TYPES.join(', '), ...scope(s) },
  });
  if (res.status !== 200) return upstreamFailure(res, s.uplink, what);
  const bytes = await readBody(res, MAX_MANIFEST, what);
  const digest = sha256(bytes);
  const announced = res.headers['docker-content-digest'];
  if (isDigest(reference) && reference !== digest) throw mismatch(s, reference, reference, digest);
  if (typeof announced === 'string' && announced.startsWith('sha256:') && announced !== digest)
    throw mismatch(s, reference, announced, digest);
  const declared =
    String(res.headers['content-type'] ?? '')
      .split(';')[0]
      ?.trim() ?? '';
  let mediaType = declared;
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown };
    if (typeof doc.mediaType === 'string') mediaType = doc.mediaType;
  } catch {
    throw new GatewayError('GW_ERR_REGISTRY_UPSTREAM_INVALID', { message: `Manifest "${what}" is not JSON` });
  }
  if (!(MANIFEST_TYPES as readonly string[]).includes(mediaType))
    throw new GatewayError('GW_ERR_REGISTRY_UPSTREAM_INVALID', {
      message: `Manifest "${what}" has unsupported media type "${mediaType.slice(0, 100)}"`,
    });
  return { digest, mediaType, bytes };
}

const encode = (m: Manifest) => Buffer.concat([Buffer.from(`${m.digest}\n${m.mediaType}\n`), m.bytes]);
function decode(raw: Buffer): Manifest | undefined {
  const a = raw.indexOf(10);
  const b = raw.indexOf(10, a + 1);
  if (a < 0 || b < 0) return undefined;
  const m = {
    digest: raw.toString('utf8', 0, a),
    mediaType: raw.toString('utf8', a + 1, b),
    bytes: raw.subarray(b + 1),
  };
  return sha256(m.bytes) === m.digest ? m : undefined;
}

async function cachedManifest(s: OciSource, digest: string): Promise<Manifest | undefined> {
  const raw = await s.ctx.core.cache.get(keyOf(s, `manifest|${digest}`));
  return raw === undefined ? undefined : decode(raw);
}

/** A resolved manifest; `stale` is the uplink's failure when a tag was resolved from its last good digest. */
export type ResolvedManifest = Manifest & { readonly hit: boolean; readonly stale?: GatewayError };

/**
 * Resolves a tag or digest to the manifest bytes; a digest hit is served from the cache. With
 * `stale`, a tag the uplink cannot resolve now (5xx, timeout, rate limit, refused credentials,
 * open breaker) resolves to the digest it last had, for `staleTtl`, when that manifest is cached.
 */
export async function resolveManifest(
  s: OciSource,
  reference: string,
  options: { readonly stale?: boolean } = {},
): Promise<ResolvedManifest> {
  const { cache } = s.ctx.core;
  let digest = reference;
  if (!isDigest(reference)) {
    const tag = await cache.get(keyOf(s, `tag|${reference}`));
    if (tag !== undefined) digest = tag.toString('utf8');
  }
  if (isDigest(digest)) {
    const hit = await cachedManifest(s, digest);
    if (hit !== undefined) return { ...hit, hit: true };
  }
  let m: Manifest;
  try {
    m = await fetchManifest(s, isDigest(digest) ? digest : reference);
  } catch (error) {
    if (options.stale !== true || isDigest(reference) || !isUplinkFailure(error)) throw error;
    const last = await lastResolution(s, reference);
    const kept = last === undefined ? undefined : await cachedManifest(s, last.digest);
    if (kept === undefined) throw error;
    return { ...kept, hit: true, stale: error };
  }
  const ttl = s.ctx.config().cache;
  await cache.set(keyOf(s, `manifest|${m.digest}`), encode(m), { ttlMs: ttl.staleTtl });
  if (!isDigest(reference)) {
    const last = await lastResolution(s, reference);
    const previous = last?.digest;
    await cache.set(keyOf(s, `tag|${reference}`), Buffer.from(m.digest), { ttlMs: ttl.metadataTtl });
    await cache.set(keyOf(s, `stale-tag|${reference}`), Buffer.from(`${m.digest} ${s.ctx.clock.now()}`), {
      ttlMs: ttl.staleTtl,
    });
    // The tag pointed elsewhere when the door last resolved it: this digest is no older than that.
    if (last !== undefined && last.digest !== m.digest && last.at !== undefined)
      await boundNewDigest(s, m.digest, last.at);
    // The tag exists now: a record of its absence must not outlive its links (an evicted link
    // plus a failing uplink would otherwise read as "points nowhere" and let a denied tag pass).
    await cache.delete(keyOf(s, `no-tag|${reference}`));
    await linkTags(s, [
      { tag: reference, digest: m.digest, ...(previous === undefined ? {} : { previous }) },
    ]);
  }
  return { ...m, hit: false };
}

/** The digest a tag had when the door last resolved it from the uplink, and when (kept for staleTtl). */
async function lastResolution(
  s: OciSource,
  tag: string,
): Promise<{ readonly digest: string; readonly at?: number } | undefined> {
  const raw = await s.ctx.core.cache.get(keyOf(s, `stale-tag|${tag}`));
  if (raw === undefined) return undefined;
  const [digest = '', at] = raw.toString('utf8').split(' ');
  const t = Number(at);
  return Number.isSafeInteger(t) && t > 0 ? { digest, at: t } : { digest };
}

/**
 * A digest a tag moved to, which the door never saw before, was pushed after the door last saw
 * the tag elsewhere: that time bounds its publication time from below (`absent-at`), whatever
 * its image config's `created` says (the builder sets it, to any date).
 */
async function boundNewDigest(s: OciSource, digest: string, seenElsewhereAt: number): Promise<void> {
  const name = nameOf(s);
  if ((await s.facts.of('oci', name, digest)).size > 0) return;
  await s.facts.remember(
    'oci',
    name,
    'absent-at',
    new Map([[digest, new Date(seenElsewhereAt).toISOString()]]),
  );
}

/** Where named tags point: tag → digest, and the tags whose digest could not be learned, with why. */
export interface NamedTags {
  readonly links: ReadonlyMap<string, string>;
  readonly unresolved: readonly { readonly version: string; readonly error: GatewayError }[];
}

const PARALLEL_TAGS = 8;

/**
 * Resolves the tags a policy list names, as a pull of each would (OCI deny-by-tag on a first
 * pull by digest or through another tag): the tag's link for metadataTtl, else its manifest from
 * the uplink (cached and linked, its last good digest while the uplink fails). A tag the uplink
 * does not have points nowhere; that is remembered for staleTtl, fresh for metadataTtl and
 * trusted while the uplink fails. A tag neither resolved nor known absent is unresolved with the
 * error, and policy fails closed on it. Only the given tags are asked for, never the tags list;
 * `known` holds tags the request itself just resolved (tag → digest).
 */
export async function resolveNamedTags(
  s: OciSource,
  tags: readonly string[],
  known: ReadonlyMap<string, string> = new Map(),
): Promise<NamedTags> {
  const { cache } = s.ctx.core;
  const { metadataTtl, staleTtl } = s.ctx.config().cache;
  const links = new Map([...known].filter(([tag]) => tags.includes(tag)));
  const unresolved: { version: string; error: GatewayError }[] = [];
  /** The tag's digest, `undefined` when the tag points nowhere; throws when it cannot be learned. */
  const digestOf = async (tag: string): Promise<string | undefined> => {
    const linked = await cache.get(keyOf(s, `tag|${tag}`));
    if (linked !== undefined) return linked.toString('utf8');
    const raw = await cache.get(keyOf(s, `no-tag|${tag}`));
    const absent = raw === undefined ? undefined : Number(raw.toString('utf8'));
    if (absent !== undefined && s.ctx.clock.now() - absent < metadataTtl) return undefined;
    try {
      return (await resolveManifest(s, tag, { stale: true })).digest;
    } catch (error) {
      if (isGatewayError(error) && error.code === 'GW_ERR_REGISTRY_NOT_FOUND') {
        const now = Buffer.from(String(s.ctx.clock.now()));
        await cache.set(keyOf(s, `no-tag|${tag}`), now, { ttlMs: staleTtl });
        return undefined;
      }
      if (absent !== undefined && isUplinkFailure(error)) return undefined;
      throw error;
    }
  };
  const resolve = async (tag: string): Promise<void> => {
    try {
      const digest = await digestOf(tag);
      if (digest !== undefined) links.set(tag, digest);
    } catch (error) {
      if (!isGatewayError(error)) throw error;
      unresolved.push({ version: tag, error });
    }
  };
  const wanted = tags.filter((t) => !isDigest(t) && !links.has(t));
  for (let i = 0; i < wanted.length; i += PARALLEL_TAGS)
    await Promise.all(wanted.slice(i, i + PARALLEL_TAGS).map(resolve));
  return { links, unresolved };
}

const tagsKey = (s: OciSource, digest: string) => keyOf(s, `digest-tags|${digest}`);

/**
 * The tags known to point at a digest: every tag the door resolved to it (manifest pulls by tag,
 * tags lists) within `staleTtl`, so policy decides one manifest alike by digest and by each tag.
 */
export async function knownTags(s: OciSource, digest: string): Promise<string[]> {
  const raw = await s.ctx.core.cache.get(tagsKey(s, digest));
  if (raw === undefined) return [];
  try {
    const tags = JSON.parse(raw.toString('utf8')) as unknown;
    return Array.isArray(tags) ? tags.filter((t): t is string => typeof t === 'string') : [];
  } catch {
    return [];
  }
}

/**
 * Records tags as pointing at their digests, and no longer at the digest they had before (read,
 * merge, write: a tags list links all its tags again at the end, after its parallel resolutions).
 */
export async function linkTags(
  s: OciSource,
  links: readonly { readonly tag: string; readonly digest: string; readonly previous?: string }[],
): Promise<void> {
  const changes = new Map<string, { add: Set<string>; drop: Set<string> }>();
  const change = (digest: string) => {
    let c = changes.get(digest);
    if (c === undefined) changes.set(digest, (c = { add: new Set(), drop: new Set() }));
    return c;
  };
  for (const l of links) {
    change(l.digest).add.add(l.tag);
    if (l.previous !== undefined && l.previous !== l.digest) change(l.previous).drop.add(l.tag);
  }
  const ttlMs = s.ctx.config().cache.staleTtl;
  for (const [digest, c] of changes) {
    const before = await knownTags(s, digest);
    const after = [...new Set([...before, ...c.add])]
      .filter((t) => c.add.has(t) || !c.drop.has(t))
      .toSorted();
    await s.ctx.core.cache.set(tagsKey(s, digest), Buffer.from(JSON.stringify(after)), { ttlMs });
  }
}

async function configCreated(
  s: OciSource,
  doc: { config?: { digest?: unknown } },
): Promise<number | undefined> {
  const digest = doc.config?.digest;
  if (typeof digest !== 'string' || !isDigest(digest)) return undefined;
  const what = `${nameOf(s)}@${digest}`;
  const res = await s.uplink.request({
    url: s.uplink.resolve(`v2/${s.repo}/blobs/${digest}`),
    what,
    headers: scope(s),
  });
  if (res.status !== 200) return upstreamFailure(res, s.uplink, what);
  const bytes = await readBody(res, MAX_CONFIG, what);
  if (sha256(bytes) !== digest) throw mismatch(s, digest, digest, sha256(bytes));
  let raw: unknown;
  try {
    raw = (JSON.parse(bytes.toString('utf8')) as { created?: unknown }).created;
  } catch {
    return undefined;
  }
  const created = typeof raw === 'string' ? Date.parse(raw) : Number.NaN;
  return Number.isFinite(created) && created >= EARLIEST && created <= s.ctx.clock.now() + 300_000
    ? created
    : undefined;
}

/**
 * The publication time of a manifest (kept per digest for good: its `created`, or when it has
 * none to believe, when the door first saw it; a digest's content never changes, so neither is
 * read again), never before the last time the door saw a tag that now points at it point
 * elsewhere, when the door did not know the digest then.
 */
export async function publishedAt(s: OciSource, m: Manifest, depth = 0): Promise<number> {
  // One read of the digest's facts serves both the kept time and the bound (every pull asks).
  const facts = await s.facts.of('oci', nameOf(s), m.digest);
  const known = facts.get('published') ?? facts.get('first-seen');
  const t = known === undefined ? await createdAt(s, m, depth) : Date.parse(known);
  const bound = facts.get('absent-at');
  return bound === undefined ? t : Math.max(t, Date.parse(bound));
}

/** The publication time of a manifest the door has not dated yet, then kept for good. */
async function createdAt(s: OciSource, m: Manifest, depth: number): Promise<number> {
  const doc = JSON.parse(m.bytes.toString('utf8')) as {
    config?: { digest?: unknown };
    manifests?: { digest?: unknown }[];
  };
  let t: number | undefined;
  if (doc.manifests !== undefined && depth === 0) {
    // An index is as new as its newest image.
    const children = doc.manifests
      .map((c) => c.digest)
      .filter((d): d is string => typeof d === 'string' && isDigest(d));
    for (const d of children.slice(0, MAX_CHILDREN)) {
      const child = await resolveManifest(s, d);
      const ct = await publishedAt(s, child, depth + 1);
      t = t === undefined ? ct : Math.max(t, ct);
    }
  } else t = await configCreated(s, doc);
  const value = new Date(t ?? s.ctx.clock.now()).toISOString();
  const fact = t === undefined ? 'first-seen' : 'published';
  const stored = await s.facts.remember('oci', nameOf(s), fact, new Map([[m.digest, value]]));
  return Date.parse(stored.get(m.digest) ?? value);
}
