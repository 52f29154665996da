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
import { auditInvalidUpstream, cachedRaw } from '../metadata-flow.ts';
import type { UplinkClient } from '../uplink/client.ts';
import { hashGoMod, hashModuleZip } from './dirhash.ts';
import { type GoSums, lookupSums, type TreeHeadStore } from './sumdb.ts';
import { SumdbVerificationError, type SumdbVerifier, type TileReader, tilePath } from './tlog.ts';
import { fetchSmall, upstreamFailure } from './upstream.ts';
import type { FactKind, VersionFacts } from './version-facts.ts';

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

const treeHeads = (v: GoVerifyContext, db: UplinkClient): TreeHeadStore => {
  const key = `reg:v1:gosumdb:${db.name}|head`;
  return {
    async latest() {
      const raw = await v.ctx.core.cache.get(key);
      const m = raw === undefined ? null : /^(\d+) ([A-Za-z0-9+/]{43}=)$/.exec(raw.toString('utf8'));
      return m === null ? undefined : { size: Number(m[1]), hash: Buffer.from(m[2] as string, 'base64') };
    },
    remember: (head) =>
      v.ctx.core.cache.set(key, Buffer.from(`${head.size} ${head.hash.toString('base64')}`), {
        ttlMs: HEAD_TTL,
      }),
  };
};

/** Tiles through the raw cache: a tile of a given width never changes. */
const tileReader =
  (v: GoVerifyContext, db: UplinkClient): TileReader =>
  (level, index, width) => {
    const path = tilePath(level, index, width);
    return cachedRaw(v.ctx, `reg:v1:gosumdb:${db.name}|${path}`, async () => {
      const { body } = await fetchSmall(db, db.resolve(path), `checksum database ${path}`, width * 32);
      return body;
    });
  };
const MAX_ZIP = 500 << 20;

async function expectedHash(v: GoVerifyContext, fact: FactKind): Promise<{ hash?: string; source: string }> {
  let sums: GoSums | undefined;
  if (v.checksumDb !== undefined) {
    try {
      sums = await lookupSums(
        v.checksumDb,
        v.module,
        v.version,
        v.checksumDbKey,
        tileReader(v, v.checksumDb),
        treeHeads(v, v.checksumDb),
      );
    } catch (error) {
      if (!(error instanceof SumdbVerificationError)) throw error;
      // Tiles that took part in a failed proof may be the forged ones: fetch them afresh next time.
      await v.ctx.core.cache.deletePrefix(`reg:v1:gosumdb:${v.checksumDb.name}|tile/`);
      const reason = `Checksum database "${v.checksumDb.name}" sent an unverifiable answer for "${v.module}@${v.version}": ${error.message}`;
      auditInvalidUpstream(v.ctx, v.caller, `go:${v.module}@${v.version}`, v.checksumDb.name, reason);
      throw new GatewayError('GW_ERR_REGISTRY_UPSTREAM_INVALID', { message: reason });
    }
  }
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
    const res = await v.uplink.request({ url, what: `${v.module}@${v.version}.zip` });
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
