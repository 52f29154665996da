/**
 * Verification of go.mod files and module zips against their `h1:` hashes: from the configured
 * checksum database when it knows the version, otherwise the hash pinned the first time the
 * door saw the version (trust on first use, so an upstream cannot swap a zip later). A zip is
 * written to a temporary file, hashed, and enters the blob cache only when it matched.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomUUID } from 'node:crypto';
import { GatewayError } from '#core/errors';
import type { Digest } from '../cache/blob-cache.ts';
import { audit, type Caller, type RegistryContext } from '../context.ts';
import { auditInvalidUpstream, cachedRaw, cacheRaw } from '../metadata-flow.ts';
import type { UplinkClient } from '../uplink/client.ts';
import { hashGoMod, hashModuleZip } from './dirhash.ts';
import { escapeGoPath } from './paths.ts';
import { fetchLookup, type LookupAnswer, parseLookup, type TreeHeadStore } from './sumdb.ts';
import {
  SumdbVerificationError,
  type SumdbVerifier,
  splitLookup,
  type TileReader,
  tilePath,
} from './tlog.ts';
import { fetchSmall, upstreamFailure } from './upstream.ts';
import type { FactKind, VersionFacts } from '../version-facts.ts';

export interface GoVerifyContext {
  readonly ctx: RegistryContext;
  readonly facts: VersionFacts;
  readonly checksumDb: UplinkClient | undefined;
  /** When set, lookups are verified (signed tree head, inclusion proof). */
  readonly checksumDbKey?: SumdbVerifier;
  readonly uplink: UplinkClient;
  readonly module: string;
  readonly version: string;
  readonly caller: Caller;
}

const MAX_MOD = 16 << 20;
/** How long the newest verified tree head is remembered (shared by replicas through the cache). */
const HEAD_TTL = 90 * 86_400_000;

const treeHeads = (ctx: RegistryContext, db: UplinkClient): TreeHeadStore => {
  const key = `reg:v1:gosumdb:${db.name}|head`;
  return {
    async latest() {
      const raw = await ctx.core.cache.get(key);
      const m = raw === undefined ? null : /^(\d+) ([A-Za-z0-9+/]{43}=)$/.exec(raw.toString('utf8'));
      return m === null ? undefined : { size: Number(m[1]), hash: Buffer.from(m[2] as string, 'base64') };
    },
    remember: (head) =>
      ctx.core.cache.set(key, Buffer.from(`${head.size} ${head.hash.toString('base64')}`), {
        ttlMs: HEAD_TTL,
      }),
  };
};

/** The cache key of a checksum database path (a tile, a lookup): shared by replicas. */
export const sumdbCacheKey = (db: UplinkClient, path: string): string => `reg:v1:gosumdb:${db.name}|${path}`;

/** The largest data tile read: 256 records of a few `go.sum` lines each fit many times over. */
const MAX_DATA_TILE = 1 << 20;

/**
 * Reads a tile (`path` in canonical form) through the raw cache, kept for good: a tile of a given
 * width never changes. A hash tile must hold exactly `width` hashes (SumdbVerificationError
 * otherwise, and nothing is cached).
 */
export function readSumdbTile(
  ctx: RegistryContext,
  db: UplinkClient,
  tile: { readonly path: string; readonly data: boolean; readonly width: number },
): Promise<Buffer> {
  return cachedRaw(
    ctx,
    sumdbCacheKey(db, tile.path),
    async () => {
      const limit = tile.data ? MAX_DATA_TILE : tile.width * 32;
      const { body } = await fetchSmall(db, db.resolve(tile.path), `checksum database ${tile.path}`, limit);
      if (!tile.data && body.length !== limit)
        throw new SumdbVerificationError(`tile ${tile.path} has ${body.length} bytes, not ${limit}`);
      return body;
    },
    { immutable: true },
  );
}

const tileReader =
  (ctx: RegistryContext, db: UplinkClient): TileReader =>
  (level, index, width) =>
    readSumdbTile(ctx, db, { path: tilePath(level, index, width), data: false, width });
const MAX_ZIP = 500 << 20;

/**
 * The checksum database's answer for one module version, undefined when it does not know it.
 * With a verifier key the answer is proven (signed tree head, inclusion, consistency with the
 * newest tree seen) before it counts; a proven answer is cached for good (its record never
 * changes), so the door's own checks and the go command's lookups through the door ask once.
 * An unverifiable answer is audited and refused (GW_ERR_REGISTRY_UPSTREAM_INVALID).
 */
export async function checksumLookup(
  ctx: RegistryContext,
  db: UplinkClient,
  verifier: SumdbVerifier | undefined,
  module: string,
  version: string,
  caller: Caller,
): Promise<LookupAnswer | undefined> {
  const key = sumdbCacheKey(db, `lookup/${escapeGoPath(module)}@${escapeGoPath(version)}`);
  const cached = await ctx.core.cache.get(key);
  if (cached !== undefined) {
    const text = cached.toString('utf8');
    return { text, record: verifier === undefined ? text : splitLookup(text).record };
  }
  let answer: LookupAnswer | undefined;
  try {
    answer = await fetchLookup(
      db,
      module,
      version,
      verifier,
      verifier === undefined ? undefined : tileReader(ctx, db),
      treeHeads(ctx, db),
    );
  } catch (error) {
    if (!(error instanceof SumdbVerificationError)) throw error;
    // Tiles that took part in a failed proof may be the forged ones: fetch them afresh next time.
    await ctx.core.cache.deletePrefix(sumdbCacheKey(db, 'tile/'));
    const reason = `Checksum database "${db.name}" sent an unverifiable answer for "${module}@${version}": ${error.message}`;
    auditInvalidUpstream(ctx, caller, `go:${module}@${version}`, db.name, reason);
    throw new GatewayError('GW_ERR_REGISTRY_UPSTREAM_INVALID', { message: reason });
  }
  if (answer !== undefined) cacheRaw(ctx, key, Buffer.from(answer.text), { immutable: true });
  return answer;
}

async function expectedHash(v: GoVerifyContext, fact: FactKind): Promise<{ hash?: string; source: string }> {
  const answer =
    v.checksumDb === undefined
      ? undefined
      : await checksumLookup(v.ctx, v.checksumDb, v.checksumDbKey, v.module, v.version, v.caller);
  const sums = answer === undefined ? undefined : parseLookup(answer.record, v.module, v.version);
  const fromDb = fact === 'h1' ? sums?.zip : sums?.mod;
  if (fromDb !== undefined) return { hash: fromDb, source: `checksum database "${v.checksumDb?.name}"` };
  const pinned = await v.facts.get('go', v.module, v.version, fact);
  return pinned === undefined
    ? { source: 'first download' }
    : { hash: pinned, source: 'the hash pinned at first download' };
}

function mismatch(
  v: GoVerifyContext,
  what: string,
  expected: string,
  actual: string,
  source: string,
): GatewayError {
  v.ctx.metrics.integrityFailures.inc({ registry: v.uplink.name });
  audit(v.ctx, {
    actor: v.caller.actor,
    action: 'registry.integrity.mismatch',
    resource: `go:${v.module}@${v.version}`,
    decision: 'deny',
    reason: `The ${what} hashes to ${actual}, but ${source} says ${expected}`,
    clientIp: v.caller.clientIp,
    requestId: v.caller.requestId,
    details: { uplink: v.uplink.name, expected, actual },
  });
  return new GatewayError('GW_ERR_REGISTRY_INTEGRITY_MISMATCH', {
    message: `The ${what} of "${v.module}@${v.version}" does not match its h1 hash from ${source}`,
    details: { expected, actual },
  });
}

async function check(v: GoVerifyContext, fact: FactKind, what: string, actual: string): Promise<void> {
  const expected = await expectedHash(v, fact);
  if (expected.hash !== undefined && expected.hash !== actual)
    throw mismatch(v, what, expected.hash, actual, expected.source);
  const stored = await v.facts.remember(
    'go',
    v.module,
    fact,
    new Map([[v.version, expected.hash ?? actual]]),
  );
  const pinned = stored.get(v.version);
  if (pinned !== undefined && pinned !== actual)
    throw mismatch(v, what, pinned, actual, 'the hash pinned at first download');
}

/** Fetches a go.mod (cached once verified) and checks its `/go.mod h1:` hash. */
export async function verifyGoMod(v: GoVerifyContext, url: string): Promise<Buffer> {
  const key = `${v.ctx.metadata.indexKey('go', v.module)}|mod|${v.uplink.name}|${v.version}`;
  return cachedRaw(
    v.ctx,
    key,
    async () => {
      const { body } = await fetchSmall(v.uplink, url, `${v.module}@${v.version} go.mod`, MAX_MOD);
      await check(v, 'h1-mod', 'go.mod', hashGoMod(body));
      return body;
    },
    { immutable: true },
  );
}

/** Counts bytes and hashes them with SHA-256 on the way to the temporary file. */
class Sha256Counter extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _e: BufferEncoding, done: (e?: Error | null, c?: Buffer) => void): void {
    this.bytes += chunk.length;
    if (this.bytes > MAX_ZIP) {
      done(new RangeError(`Module zip exceeds ${MAX_ZIP} bytes`));
      return;
    }
    this.hash.update(chunk);
    done(null, chunk);
  }
}

/** The digest of the verified zip when it is in the blob cache (its pinned digest, blob present). */
export async function cachedGoZip(v: GoVerifyContext): Promise<Digest | undefined> {
  const known = await v.facts.get('go', v.module, v.version, 'digest');
  if (known === undefined) return undefined;
  const digest: Digest = { algorithm: 'sha256', hex: known };
  return (await v.ctx.blobs.size(digest)) === undefined ? undefined : digest;
}

/**
 * Makes sure the verified zip is in the blob cache and returns its SHA-256 digest: a pinned
 * digest whose blob is present is used as is; otherwise the zip is downloaded, `h1`-checked and
 * stored.
 */
export async function verifyGoZip(v: GoVerifyContext, url: string, tmpDir: string): Promise<Digest> {
  const cached = await cachedGoZip(v);
  if (cached !== undefined) return cached;
  await mkdir(tmpDir, { recursive: true });
  const tmp = join(tmpDir, randomUUID());
  try {
    const res = await v.uplink.requestFile({ url, what: `${v.module}@${v.version}.zip` });
    if (res.status !== 200) await upstreamFailure(res, v.uplink, `${v.module}@${v.version}.zip`);
    const counter = new Sha256Counter();
    await pipeline(res.body, counter, createWriteStream(tmp));
    let actual: string;
    try {
      actual = await hashModuleZip(tmp, `${v.module}@${v.version}/`);
    } catch (error) {
      throw mismatch(v, 'zip', 'a valid module zip', (error as Error).message, 'the module zip format');
    }
    await check(v, 'h1', 'zip', actual);
    const digest: Digest = { algorithm: 'sha256', hex: counter.hash.digest('hex') };
    const writer = await v.ctx.blobs.writer();
    await pipeline(createReadStream(tmp), writer.stream).catch(async (error: unknown) => {
      await writer.abort();
      throw error;
    });
    await writer.commit(digest);
    await v.facts.remember('go', v.module, 'digest', new Map([[v.version, digest.hex]]));
    return digest;
  } finally {
    await rm(tmp, { force: true });
  }
}
