import type { FastifyRequest } from 'fastify';
import type { MetadataEntry } from './cache/entry.ts';
import {
  audit,
  type Caller,
  callerOf,
  cutoffOf,
  isUplinkFailure,
  publicBase,
  type RegistryContext,
} from './context.ts';
import type { UplinkClient } from './uplink/client.ts';

/** Where and when a refresh filters: the age cut-off, the link base and the policy version. */
export interface RefreshPoint {
  readonly cutoff: number;
  readonly base: string;
  readonly hostKey: string;
  readonly policyVersion: string;
}

export interface CachedResult {
  readonly entry: MetadataEntry;
  readonly stale: boolean;
  readonly policyVersion: string;
  readonly uplink: string;
}

/** What a build returns: entries to answer with now, and optionally better ones later. */
export interface Built<V extends string> {
  readonly entries: Readonly<Record<V, MetadataEntry>>;
  /** The same entries with their encodings, stored over the first ones when ready. */
  readonly later?: Promise<Readonly<Record<V, MetadataEntry>>>;
}

export interface CachedDocumentOptions<V extends string> {
  readonly ecosystem: string;
  readonly name: string;
  readonly variant: V;
  /**
   * Names the build among the builds of one package: concurrent misses share a build only when
   * it makes the variant they ask for, so a build that makes other variants than the package's
   * main one (Go's `.info` beside `list`/`latest`, PyPI's JSON API beside the simple pages)
   * needs its own key. Default: the package's main build.
   */
  readonly buildKey?: string;
  readonly uplink: UplinkClient;
  /** Fetches, decides and renders every variant; called once for concurrent misses. */
  readonly build: (at: RefreshPoint, caller: Caller) => Promise<Built<V>>;
}

/**
 * The metadata flow shared by every ecosystem: a hit is served from bytes; concurrent misses
 * share one build, whose variants are stored under fresh and stale keys; when the uplink fails
 * the last good entry is served marked stale, and the event is audited.
 */
export async function cachedDocument<V extends string>(
  ctx: RegistryContext,
  request: FastifyRequest,
  o: CachedDocumentOptions<V>,
): Promise<CachedResult> {
  const engine = ctx.policy.current();
  // Fresh keys carry the policy version and the vulnerability data's generation: after an
  // import, metadata filtered with older data is not reused. The stale copy is keyed by the
  // policy version only: while the uplink is down the last good copy is served (with its
  // Warning) even when filtered before an import, since every file is decided afresh on
  // download; a version a new advisory names is refused there.
  const stamp = await engine.stamp();
  const { cache } = ctx.config();
  const cutoff = cutoffOf(ctx.clock.now(), cache.cutoffStep);
  const { base, hostKey } = publicBase(ctx, request);
  const md = ctx.metadata;
  const registry = o.uplink.name;
  const result = (entry: MetadataEntry, stale: boolean) => ({
    entry,
    stale,
    policyVersion: engine.version,
    uplink: registry,
  });
  const hit = await md.getEntry(md.docKey(o.ecosystem, o.name, o.variant, stamp, cutoff, hostKey));
  if (hit !== undefined) {
    ctx.metrics.cache.inc({ registry, kind: 'metadata', result: 'hit' });
    return result(hit, false);
  }
  ctx.metrics.cache.inc({ registry, kind: 'metadata', result: 'miss' });
  const at: RefreshPoint = { cutoff, base, hostKey, policyVersion: engine.version };
  try {
    const built = await md.coalesce(
      `${o.ecosystem}|${o.name}|${o.buildKey ?? ''}|${stamp}|${cutoff}|${hostKey}`,
      async () => {
        const epoch = md.epoch;
        const { entries, later } = await o.build(at, callerOf(request));
        const store = async (all: Readonly<Record<V, MetadataEntry>>) => {
          if (md.epoch !== epoch) return;
          // A reload while the build ran: its decisions may be the new policy's (each is made
          // with the engine current then), which a key of the policy it started under must not
          // hold, or a reload back would serve them. The answer still goes to its requests.
          if (ctx.policy.current().version !== engine.version) return;
          await Promise.all(
            Object.entries<MetadataEntry>(all).map(([variant, entry]) =>
              md.putEntry(
                entry,
                {
                  key: md.docKey(o.ecosystem, o.name, variant, stamp, at.cutoff, at.hostKey),
                  ttlMs: cache.metadataTtl,
                },
                {
                  key: md.staleKey(o.ecosystem, o.name, variant, at.policyVersion, at.hostKey),
                  ttlMs: cache.staleTtl,
                },
              ),
            ),
          );
        };
        // The answer does not wait for the cache writes (a Redis round trip with megabytes); a
        // request arriving in between re-filters from the cached raw bytes at worst.
        setImmediate(() => {
          store(entries).catch((error: unknown) => ctx.log.warn('Cannot store metadata', { error }));
        });
        later
          ?.then(store)
          .catch((error: unknown) => ctx.log.warn('Cannot store compressed metadata', { error }));
        return entries;
      },
    );
    return result(built[o.variant], false);
  } catch (error) {
    if (!isUplinkFailure(error)) throw error;
    const stale = await md.getEntry(md.staleKey(o.ecosystem, o.name, o.variant, engine.version, hostKey));
    if (stale === undefined) throw error;
    servedStale(ctx, callerOf(request), {
      resource: `${o.ecosystem}:${o.name}`,
      uplink: registry,
      error,
      details: { fetchedAt: new Date(stale.meta.fetchedAt).toISOString() },
    });
    return result(stale, true);
  }
}

/** The key of the stale copy of a package's per-version facts kept under `key`. */
const staleIndexKey = (key: string) => `${key}|stale`;

/** Stores a package's per-version facts: fresh for metadataTtl, a stale copy for staleTtl. */
export async function putIndex(ctx: RegistryContext, key: string, index: unknown): Promise<void> {
  const { metadataTtl, staleTtl } = ctx.config().cache;
  await Promise.all([
    ctx.metadata.putJson(key, index, metadataTtl),
    ctx.metadata.putJson(staleIndexKey(key), index, staleTtl),
  ]);
}

/**
 * A package's per-version facts (what its files are served from): the cached ones (`read`), else
 * those a build of its metadata (`load`) stores, else the stale copy of the last build's (kept
 * for staleTtl: the facts of a published version do not change, and the filtered document may
 * outlive the fresh facts, or be served stale while the uplink is down). Only when there are
 * none at all, and the uplink answered, are both rebuilt once (an invalidation drops the stale
 * document too, so never while it is what is being served). Files are still decided afresh.
 */
export async function loadIndex<T>(
  ctx: RegistryContext,
  ecosystem: string,
  name: string,
  read: () => Promise<T | undefined>,
  load: () => Promise<CachedResult>,
): Promise<T | undefined> {
  const cached = await read();
  if (cached !== undefined) return cached;
  const served = await load();
  const loaded =
    (await read()) ?? (await ctx.metadata.getJson<T>(staleIndexKey(ctx.metadata.indexKey(ecosystem, name))));
  if (loaded !== undefined || served.stale) return loaded;
  await ctx.metadata.invalidate(ecosystem, name);
  await load();
  return read();
}

/** Counts and audits metadata served stale because its uplink failed. */
export function servedStale(
  ctx: RegistryContext,
  caller: Caller,
  o: {
    readonly resource: string;
    readonly uplink: string;
    readonly error: Error;
    readonly details?: Readonly<Record<string, unknown>>;
  },
): void {
  ctx.metrics.cache.inc({ registry: o.uplink, kind: 'metadata', result: 'stale' });
  audit(ctx, {
    actor: caller.actor,
    action: 'registry.cache.stale',
    resource: o.resource,
    decision: 'info',
    reason: `Served stale metadata: ${o.error.message}`,
    clientIp: caller.clientIp,
    requestId: caller.requestId,
    details: { uplink: o.uplink, ...o.details },
  });
}

/** Audits upstream metadata that failed to parse (it is never cached). */
export function auditInvalidUpstream(
  ctx: RegistryContext,
  caller: Caller,
  resource: string,
  uplink: string,
  reason: string,
): void {
  audit(ctx, {
    actor: caller.actor,
    action: 'registry.upstream.invalid',
    resource,
    decision: 'error',
    reason,
    clientIp: caller.clientIp,
    requestId: caller.requestId,
    details: { uplink },
  });
}

interface RawOptions {
  readonly immutable?: boolean;
}

/** Caches raw upstream bytes as cachedRaw does, in the background (a failure is logged). */
export function cacheRaw(ctx: RegistryContext, key: string, bytes: Buffer, options: RawOptions = {}): void {
  const { metadataTtl, staleTtl } = ctx.config().cache;
  void ctx.core.cache
    .set(key, bytes, { ttlMs: options.immutable === true ? Math.max(metadataTtl, staleTtl) : metadataTtl })
    .catch((error: unknown) => ctx.log.warn('Cannot cache upstream metadata', { error }));
}

/**
 * Fetches raw upstream bytes through the cache (`metadataTtl`), so a new cut-off re-filters
 * without the uplink. A document that never changes once published (a Go version's `.info` or
 * go.mod) is `immutable` and kept for `staleTtl`, so files seen before stay servable while the
 * uplink is down.
 */
export async function cachedRaw(
  ctx: RegistryContext,
  key: string,
  fetch: () => Promise<Buffer>,
  options: RawOptions = {},
): Promise<Buffer> {
  const cached = await ctx.core.cache.get(key);
  if (cached !== undefined) return cached;
  const bytes = await fetch();
  cacheRaw(ctx, key, bytes, options);
  return bytes;
}
