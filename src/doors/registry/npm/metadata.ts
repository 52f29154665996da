import { GatewayError, isGatewayError } from '#core/errors';
import type { FastifyRequest } from 'fastify';
import type { EntryMeta } from '../cache/entry.ts';
import { bodyLimit, type Caller, decideMany, headerText, type RegistryContext } from '../context.ts';
import {
  auditInvalidUpstream,
  type Built,
  type CachedResult,
  cachedDocument,
  loadIndex,
  putIndex,
  type RefreshPoint,
} from '../metadata-flow.ts';
import type { UplinkClient, UplinkResponse } from '../uplink/client.ts';
import type { UplinkSelector } from '../uplink/select.ts';
import type { PackumentSummary, VersionFacts } from './packument.ts';
import type { PackumentProcessor } from './packument-processor.ts';

export type PackumentVariant = 'full' | 'abbreviated';

/** Facts of every version of a package, for tarball requests. */
export interface NpmIndex {
  readonly uplink: string;
  readonly fetchedAt: number;
  readonly versions: Readonly<Record<string, VersionFacts>>;
}

/** The `@scope%2fname` form the registry protocol uses in paths. */
export const encodeNpmName = (name: string): string => name.replace('/', '%2f');

function notice(
  summary: PackumentSummary,
  refused: readonly { version: string; reason: string }[],
): string | undefined {
  if (refused.length === 0) return undefined;
  const shown = refused
    .slice(-3)
    .map((r) => r.reason)
    .join('; ');
  return headerText(
    `Gatehouse hid ${refused.length} of ${summary.versions.length} versions of "${summary.name}": ${shown}`,
  );
}

/** Filtered npm metadata through the shared cache flow; large documents go to the worker. */
export class NpmMetadata {
  readonly #ctx: RegistryContext;
  readonly #selector: UplinkSelector;
  readonly #processor: PackumentProcessor;
  /** Indexes built but not yet in the cache, by key. */
  readonly #pendingIndex = new Map<string, NpmIndex>();

  constructor(ctx: RegistryContext, selector: UplinkSelector, processor: PackumentProcessor) {
    this.#ctx = ctx;
    this.#selector = selector;
    this.#processor = processor;
  }

  uplinkFor(name: string): UplinkClient {
    const uplink = this.#selector.select(name);
    if (uplink === undefined) {
      throw new GatewayError('GW_ERR_REGISTRY_NOT_FOUND', { message: `No uplink serves "${name}"` });
    }
    return uplink;
  }

  packument(name: string, variant: PackumentVariant, request: FastifyRequest): Promise<CachedResult> {
    const uplink = this.uplinkFor(name);
    return cachedDocument(this.#ctx, request, {
      ecosystem: 'npm',
      name,
      variant,
      uplink,
      build: (at, caller) => this.#build(name, uplink, at, caller),
    });
  }

  /** Version facts, from the cache or by loading the packument once. */
  async index(name: string, request: FastifyRequest): Promise<NpmIndex> {
    const key = this.#ctx.metadata.indexKey('npm', name);
    const read = async () => this.#pendingIndex.get(key) ?? (await this.#ctx.metadata.getJson<NpmIndex>(key));
    const loaded = await loadIndex(this.#ctx, 'npm', name, read, () =>
      this.packument(name, 'abbreviated', request),
    );
    if (loaded === undefined)
      throw new GatewayError('GW_ERR_REGISTRY_NOT_FOUND', { message: `Package "${name}" is not available` });
    return loaded;
  }

  async #open(name: string, uplink: UplinkClient): Promise<UplinkResponse> {
    const res = await uplink.request({
      url: uplink.resolve(encodeNpmName(name)),
      headers: { accept: 'application/json' },
      what: name,
    });
    if (res.status === 404) {
      await res.body.dump();
      throw new GatewayError('GW_ERR_REGISTRY_NOT_FOUND', {
        message: `Package "${name}" was not found on uplink "${uplink.name}"`,
      });
    }
    if (res.status !== 200) {
      await res.body.dump();
      throw new GatewayError('GW_ERR_REGISTRY_UPLINK_UNAVAILABLE', {
        message: `Cannot fetch "${name}" from uplink "${uplink.name}": status ${res.status}`,
        details: { uplink: uplink.name, status: res.status },
      });
    }
    return res;
  }

  /**
   * Reads from the cached raw bytes when there are some, otherwise streams the uplink's answer
   * into the reader as it downloads, and caches the raw bytes afterwards.
   */
  async #read(
    name: string,
    uplink: UplinkClient,
    rawKey: string,
    tarballBase: string,
    plan: Parameters<PackumentProcessor['process']>[2],
  ) {
    const ctx = this.#ctx;
    const cached = await ctx.core.cache.get(rawKey);
    if (cached !== undefined) return this.#processor.process(cached, { name, tarballBase }, plan);
    const res = await this.#open(name, uplink);
    const limit = ctx.config().cache.maxMetadataSize;
    const { declared, tooLarge } = bodyLimit(res, limit, name);
    const body = res.body;
    async function* chunks(): AsyncGenerator<Buffer> {
      try {
        for await (const c of body) yield c as Buffer;
      } catch (cause) {
        throw new GatewayError('GW_ERR_REGISTRY_UPLINK_UNAVAILABLE', {
          message: `Cannot fetch "${name}" from uplink "${uplink.name}": the body was cut off`,
          cause,
        });
      }
    }
    let processed;
    try {
      processed = await this.#processor.processStream(
        chunks(),
        {
          name,
          tarballBase,
          limit,
          tooLarge,
          owned: true,
          ...(declared === undefined ? {} : { sizeHint: declared }),
        },
        plan,
      );
    } finally {
      body.destroy();
    }
    void processed.raw
      .then((raw) => ctx.core.cache.set(rawKey, raw, { ttlMs: ctx.config().cache.metadataTtl }))
      .catch((error: unknown) => ctx.log.warn('Cannot cache upstream metadata', { error }));
    return processed;
  }

  async #build(
    name: string,
    uplink: UplinkClient,
    at: RefreshPoint,
    caller: Caller,
  ): Promise<Built<PackumentVariant>> {
    const ctx = this.#ctx;
    // The advisories load while the packument downloads, not after its last byte.
    ctx.policy.current().prepare('npm', name);
    const rawKey = `${ctx.metadata.indexKey('npm', name)}|raw|${uplink.name}`;
    let processed;
    try {
      processed = await this.#read(name, uplink, rawKey, `${at.base}/npm/${name}/-/`, async (summary) => {
        const subjects = summary.versions.map((v) => ({
          ecosystem: 'npm' as const,
          name,
          version: v.version,
          registry: uplink.name,
          ...(v.publishedAt === undefined ? {} : { publishedAt: v.publishedAt }),
        }));
        const decisions = await decideMany(ctx, subjects, caller, {
          now: at.cutoff,
          registry: uplink.name,
          kind: 'metadata',
        });
        const refused = decisions
          .filter((d) => !d.allowed)
          .map((d) => ({ version: d.subject.version, reason: d.reason }));
        const text = notice(summary, refused);
        const meta: EntryMeta = {
          contentType: 'application/json',
          fetchedAt: ctx.clock.now(),
          uplink: uplink.name,
          filtered: refused.length,
          total: summary.versions.length,
          ...(text === undefined ? {} : { notice: text }),
        };
        return { denied: refused.map((r) => r.version), meta };
      });
    } catch (error) {
      // Never keep bytes that did not parse: the next request asks the uplink again.
      await ctx.core.cache.delete(rawKey);
      if (isGatewayError(error) && error.code === 'GW_ERR_REGISTRY_UPSTREAM_INVALID') {
        auditInvalidUpstream(ctx, caller, `npm:${name}`, uplink.name, error.message);
      }
      throw error;
    }
    const index: NpmIndex = {
      uplink: uplink.name,
      fetchedAt: ctx.clock.now(),
      versions: Object.fromEntries(processed.summary.versions.map((v) => [v.version, v])),
    };
    // Serializing thousands of versions' facts waits until the answer is on its way; tarball
    // requests meanwhile find the index here.
    const key = ctx.metadata.indexKey('npm', name);
    this.#pendingIndex.set(key, index);
    setImmediate(() => {
      putIndex(ctx, key, index)
        .catch((error: unknown) => ctx.log.warn('Cannot cache the package index', { error }))
        .finally(() => {
          if (this.#pendingIndex.get(key) === index) this.#pendingIndex.delete(key);
        });
    });
    return {
      entries: { full: processed.full, abbreviated: processed.abbreviated },
      later: processed.compressed,
    };
  }
}
