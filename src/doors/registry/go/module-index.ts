/**
 * The versions of one Go module as the door knows them: the upstream `@v/list` (or `@latest`
 * when a module has no tags), each version's `.info` time, and the first time Gatehouse saw it.
 * Publication time is the `.info` time when plausible, otherwise the first-seen time. A commit
 * time is chosen by whoever made the commit, so it is also bounded by what the door saw: a version
 * that was not in the list the door read before is no older than that read (`absent-at`), however
 * old its commit says it is; a backdated commit cannot pass a minimum age on a module the door
 * has been reading.
 */
import { isCanonicalGoVersion } from '#core/vulndb';
import type { RegistryContext } from '../context.ts';
import { cachedRaw } from '../metadata-flow.ts';
import type { UplinkClient } from '../uplink/client.ts';
import { escapeGoPath } from './paths.ts';
import { fetchSmall } from './upstream.ts';
import { publicationTime, type VersionFacts } from '../version-facts.ts';

/** One version's `.info` document (go.dev/ref/mod#goproxy-protocol). */
export interface GoInfo {
  readonly Version: string;
  readonly Time?: string;
}

export interface GoModuleVersions {
  readonly uplink: string;
  /** Version → publication time (epoch ms), in upstream list order. */
  readonly versions: Readonly<Record<string, number | undefined>>;
  /** Upstream lines that were not canonical versions (dropped). */
  readonly dropped: readonly string[];
}

/** Go was released on 2009-11-10; an earlier or future commit time is not believed. */
const EARLIEST = Date.parse('2009-11-10T00:00:00Z');
const INFO_LIMIT = 1 << 16;
const PARALLEL = 8;

/** Parses an `.info` body; throws SyntaxError when it is not one for `version`. */
export function parseInfo(bytes: Buffer, version: string | undefined): GoInfo {
  const doc = JSON.parse(bytes.toString('utf8')) as Partial<GoInfo> | null;
  if (typeof doc !== 'object' || doc === null || typeof doc.Version !== 'string')
    throw new SyntaxError('an .info document must be an object with a "Version"');
  if (version !== undefined && doc.Version !== version)
    throw new SyntaxError(`the .info document names "${doc.Version}", not "${version}"`);
  if (!isCanonicalGoVersion(doc.Version)) throw new SyntaxError(`"${doc.Version}" is not a module version`);
  return { Version: doc.Version, ...(typeof doc.Time === 'string' ? { Time: doc.Time } : {}) };
}

/**
 * A Go version's publication time: its `.info` time when plausible (not before Go's release),
 * else when the door first saw it; never before `absentAt` (see `publicationTime` of the facts).
 */
export const goPublicationTime = (
  info: string | undefined,
  firstSeen: string | undefined,
  absentAt: string | undefined,
  now: number,
): number | undefined => publicationTime(info, firstSeen, absentAt, now, EARLIEST);

const url = (u: UplinkClient, escaped: string, tail: string) => u.resolve(`${escaped}/${tail}`);

/** Fetches (through the raw cache, kept for `staleTtl`: versions are immutable) the `.info` of one version. */
export function fetchInfo(
  ctx: RegistryContext,
  uplink: UplinkClient,
  module: string,
  version: string,
): Promise<Buffer> {
  const escaped = escapeGoPath(module);
  return cachedRaw(
    ctx,
    `${ctx.metadata.indexKey('go', module)}|info|${uplink.name}|${version}`,
    async () => {
      const { body } = await fetchSmall(
        uplink,
        url(uplink, escaped, `@v/${escapeGoPath(version)}.info`),
        `${module}@${version}`,
        INFO_LIMIT,
      );
      parseInfo(body, version);
      return body;
    },
    { immutable: true },
  );
}

/** Loads the module's versions and their publication times, recording first-seen times. */
export async function loadModuleVersions(
  ctx: RegistryContext,
  facts: VersionFacts,
  uplink: UplinkClient,
  module: string,
): Promise<GoModuleVersions> {
  const escaped = escapeGoPath(module);
  const limit = ctx.config().cache.maxMetadataSize;
  // Set when this call read the list from upstream (not from the cache).
  let fetchedAt: number | undefined;
  const raw = await cachedRaw(ctx, `${ctx.metadata.indexKey('go', module)}|list|${uplink.name}`, async () => {
    fetchedAt = ctx.clock.now();
    const { body } = await fetchSmall(uplink, url(uplink, escaped, '@v/list'), module, limit);
    return body;
  });
  const lines = [
    ...new Set(
      raw
        .toString('utf8')
        .split('\n')
        .map((l) => l.trim().split(' ')[0] ?? ''),
    ),
  ];
  const listed = lines.filter((l) => l !== '' && isCanonicalGoVersion(l));
  const dropped = lines.filter((l) => l !== '' && !isCanonicalGoVersion(l)).slice(0, 20);
  const infos = new Map<string, GoInfo | undefined>();
  if (listed.length === 0) {
    // A module without tags: `@latest` names the pseudo-version of its default branch.
    const { body } = await fetchSmall(uplink, url(uplink, escaped, '@latest'), module, INFO_LIMIT).catch(
      (error: unknown) => {
        if ((error as { code?: string }).code === 'GW_ERR_REGISTRY_NOT_FOUND') return { body: undefined };
        throw error;
      },
    );
    if (body !== undefined) {
      const info = parseInfo(body, undefined);
      infos.set(info.Version, info);
    }
  }
  for (let i = 0; i < listed.length; i += PARALLEL) {
    const batch = listed.slice(i, i + PARALLEL);
    const got = await Promise.all(
      batch.map((v) =>
        fetchInfo(ctx, uplink, module, v).then(
          (b) => parseInfo(b, v),
          () => undefined,
        ),
      ),
    );
    batch.forEach((v, k) => infos.set(v, got[k]));
  }
  const now = ctx.clock.now();
  const { seen, absent } = await facts.observe(
    'go',
    module,
    '',
    { now, fetchedAt },
    [...infos.keys()],
    listed,
  );
  const versions: Record<string, number | undefined> = {};
  for (const [v, info] of infos) versions[v] = goPublicationTime(info?.Time, seen.get(v), absent.get(v), now);
  return { uplink: uplink.name, versions, dropped };
}
