import { createHash, randomUUID } from 'node:crypto';
import { GatewayError } from '#core/errors';
import { type Kysely, sql } from 'kysely';
import { isUniqueViolation } from '#core/storage';
import type { ArtifactContext } from './context.ts';
import { ciphertextSize, encryptStream, newHeader } from './crypto/segmented-aead.ts';
import { retryOnLockConflict } from './retry.ts';
import type { ArtifactTables, ItemRow } from './store/schema.ts';

/** One upload as the routes hand it over. */
export interface UploadRequest {
  readonly repository: string;
  readonly name: string;
  readonly version: string;
  readonly fileName?: string;
  readonly mediaType?: string;
  /** Hex SHA-256 the client announced, in either case (tools print upper case too). */
  readonly expectedSha256?: string;
  /** The announced body length, when known. */
  readonly contentLength?: number;
  readonly body: AsyncIterable<Uint8Array>;
  readonly actor: string;
  readonly signal?: AbortSignal;
}

export interface UploadResult {
  readonly item: ItemRow;
  readonly deduplicated: boolean;
}

export const REPOSITORY_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+@-]{0,199}$/;
const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
const SHA256_RE = /^[0-9a-f]{64}$/i;

/** A SHA-256 in hex, either case (tools print it in upper case too). */
export const isSha256 = (text: string): boolean => SHA256_RE.test(text);
/**
 * A media type as the download sends it back in Content-Type: `type/subtype` tokens (RFC 9110
 * §8.3.1) and parameters of printable ASCII. A form part's headers are read as UTF-8, and a
 * character past Latin-1 there made every download of the artifact fail with a 500.
 */
const MEDIA_TYPE_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:\s*;[\x20-\x7e]*)?$/;

/**
 * Control characters (C0, DEL, C1) and line separators break headers and logs; bidirectional
 * overrides and isolates make a name display as another ("invoice\u202Efdp.exe" shows as
 * "invoiceexe.pdf"); slashes would read as paths to clients, and "."
 * or ".." name a directory where a client saves the file.
 */
function hasUnsafeChar(name: string): boolean {
  if (name === '.' || name === '..') return true;
  for (const ch of name) {
    const code = ch.codePointAt(0) ?? 0;
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f) || ch === '/' || ch === '\\') return true;
    if (code === 0x2028 || code === 0x2029) return true;
    if ((code >= 0x202a && code <= 0x202e) || (code >= 0x2066 && code <= 0x2069)) return true;
  }
  return false;
}

/** The longest file name (UTF-8 bytes) common file systems store: a longer one cannot be saved. */
const MAX_FILE_NAME_BYTES = 255;

/** Whether `value` is a media type the download can send back as its Content-Type. */
export function isMediaType(value: string): boolean {
  return value.length <= 255 && MEDIA_TYPE_RE.test(value);
}

function invalid(message: string, field: string): GatewayError {
  return new GatewayError('GW_ERR_ARTIFACTS_UPLOAD_INVALID', { message, details: { field } });
}

/** Checks coordinates; names cannot contain slashes or `..`, so they never become paths. */
export function checkCoordinates(
  req: Pick<UploadRequest, 'repository' | 'name' | 'version' | 'expectedSha256' | 'fileName' | 'mediaType'>,
): void {
  if (!REPOSITORY_RE.test(req.repository))
    throw invalid(`Invalid repository "${req.repository}"`, 'repository');
  if (!NAME_RE.test(req.name) || req.name.includes('..')) throw invalid(`Invalid name "${req.name}"`, 'name');
  if (!VERSION_RE.test(req.version) || req.version.includes('..')) {
    throw invalid(`Invalid version "${req.version}"`, 'version');
  }
  const fileName = req.fileName;
  if (
    fileName !== undefined &&
    (fileName.length === 0 || Buffer.byteLength(fileName) > MAX_FILE_NAME_BYTES || hasUnsafeChar(fileName))
  ) {
    throw invalid(
      'File name must be 1 to 255 bytes (UTF-8) without control characters, bidirectional overrides or slashes, and not "." or ".."',
      'fileName',
    );
  }
  const mediaType = req.mediaType;
  if (mediaType !== undefined && !isMediaType(mediaType)) {
    throw invalid(
      `Media type must be "type/subtype" with optional parameters, up to 255 ASCII characters, not "${mediaType.slice(0, 100)}"`,
      'mediaType',
    );
  }
  if (req.expectedSha256 !== undefined && !isSha256(req.expectedSha256)) {
    throw invalid('Expected "sha256" must be 64 hex digits', 'sha256');
  }
}

/** The quota of a repository in bytes; 0 means unlimited. */
export function quotaOf(ctx: ArtifactContext, repository: string): number {
  const config = ctx.config();
  return config.quotas[repository] ?? config.defaultQuota;
}

/** First key of the advisory locks that serialise quota checks per repository (ASCII `artq`). */
const QUOTA_LOCK_CLASS = 0x61727471;

/**
 * Serialises commits into a quota-limited repository until the transaction ends, so that two
 * uploads cannot both count the usage before either committed (PostgreSQL, read committed; the
 * usage is read by a later statement, which sees what the previous holder committed). SQLite
 * write transactions are serialised already.
 */
async function lockQuota(
  ctx: ArtifactContext,
  trx: Kysely<ArtifactTables>,
  repository: string,
): Promise<void> {
  if (ctx.db.dialect !== 'postgres' || quotaOf(ctx, repository) === 0) return;
  await sql`select pg_advisory_xact_lock(${QUOTA_LOCK_CLASS}, hashtext(${repository}))`.execute(trx);
}

/** Refuses an upload that would take the repository over its quota. */
async function checkQuota(
  ctx: ArtifactContext,
  db: Kysely<ArtifactTables>,
  repository: string,
  adding: number,
): Promise<void> {
  const quota = quotaOf(ctx, repository);
  if (quota === 0) return;
  const row = await db
    .selectFrom('artifacts_items')
    .select((eb) => eb.fn.sum<number>('size').as('used'))
    .where('repository', '=', repository)
    .executeTakeFirst();
  const used = Number(row?.used ?? 0);
  if (used + adding > quota) {
    throw new GatewayError('GW_ERR_ARTIFACTS_QUOTA_EXCEEDED', {
      message: `Repository "${repository}" would exceed its quota of ${quota} bytes`,
      details: { repository, used, adding, quota },
    });
  }
}

/** Counts and hashes the plaintext on its way, enforcing the size limit and the announced length. */
async function* measure(
  source: AsyncIterable<Uint8Array>,
  state: { size: number; hash: ReturnType<typeof createHash> },
  limit: number,
  announced: number | undefined,
  onBytes: (n: number) => void,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    state.size += chunk.byteLength;
    if (state.size > limit) {
      throw new GatewayError('GW_ERR_ARTIFACTS_TOO_LARGE', {
        message: `Artifact exceeds the maximum size of ${limit} bytes`,
        details: { limit },
      });
    }
    if (announced !== undefined && state.size > announced) throw sizeMismatch(announced, state.size);
    state.hash.update(chunk);
    onBytes(chunk.byteLength);
    yield chunk;
  }
  if (announced !== undefined && state.size !== announced) throw sizeMismatch(announced, state.size);
}

function sizeMismatch(announced: number, received: number): GatewayError {
  return new GatewayError('GW_ERR_ARTIFACTS_SIZE_MISMATCH', {
    message: `Body length ${received} does not match the announced ${announced} bytes`,
    details: { announced, received },
  });
}

/** Keeps the pending row fresh so other replicas do not sweep a slow upload. */
function heartbeat(ctx: ArtifactContext, blobKey: string): () => void {
  const every = Math.max(1000, Math.floor(ctx.config().sweep.staleAfter / 3));
  const timer = setInterval(() => {
    void ctx.db
      .kysely<ArtifactTables>()
      .updateTable('artifacts_pending')
      .set({ heartbeat_at: ctx.clock.now() })
      .where('blob_key', '=', blobKey)
      .execute()
      .catch((error: unknown) => ctx.log.warn('upload heartbeat failed', { error }));
  }, every);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Streams one upload: plaintext → SHA-256 and size → segmented encryption → blob staging →
 * atomic commit. Only then, in one transaction, the blob and artifact rows are written; a crash
 * before that leaves a pending row that the sweep resolves. Memory stays at a few segments.
 */
export async function uploadArtifact(ctx: ArtifactContext, req: UploadRequest): Promise<UploadResult> {
  checkCoordinates(req);
  const config = ctx.config();
  if (req.contentLength !== undefined) {
    if (req.contentLength > config.maxArtifactSize) {
      throw new GatewayError('GW_ERR_ARTIFACTS_TOO_LARGE', {
        message: `Artifact exceeds the maximum size of ${config.maxArtifactSize} bytes`,
        details: { limit: config.maxArtifactSize },
      });
    }
    await checkQuota(ctx, ctx.db.kysely<ArtifactTables>(), req.repository, req.contentLength);
  }
  const db = ctx.db.kysely<ArtifactTables>();
  const existing = await db
    .selectFrom('artifacts_items')
    .select('id')
    .where('repository', '=', req.repository)
    .where('name', '=', req.name)
    .where('version', '=', req.version)
    .executeTakeFirst();
  if (existing !== undefined) throw alreadyExists(req);

  const id = randomUUID();
  const blobKey = `b/${id.slice(0, 2)}/${id}`;
  await db
    .insertInto('artifacts_pending')
    .values({ blob_key: blobKey, instance: ctx.instance, heartbeat_at: ctx.clock.now() })
    .execute();
  const stopHeartbeat = heartbeat(ctx, blobKey);
  const state = { size: 0, hash: createHash('sha256') };
  const { key, wrapped } = ctx.keyring.newDataKey();
  const header = newHeader(config.encryption.segmentSize);
  let committedBlob = false;
  let keepBlob = false;
  try {
    const plain = measure(req.body, state, config.maxArtifactSize, req.contentLength, (n) =>
      ctx.metrics.bytesIn.inc({}, n),
    );
    const stat = await ctx.blobs.put(
      blobKey,
      encryptStream(plain, key, header),
      req.signal === undefined ? {} : { signal: req.signal },
    );
    committedBlob = true;
    const digest = state.hash.digest('hex');
    const expected = req.expectedSha256?.toLowerCase();
    if (expected !== undefined && expected !== digest) {
      throw new GatewayError('GW_ERR_ARTIFACTS_DIGEST_MISMATCH', {
        message: `Received bytes have sha256 "${digest}", not the announced "${expected}"`,
        details: { expected, actual: digest },
      });
    }
    if (stat.size !== ciphertextSize(state.size, header.segmentSize)) {
      throw new GatewayError('GW_ERR_ARTIFACTS_BLOB_STORE', {
        message: 'Blob store stored an unexpected number of bytes',
      });
    }
    const now = ctx.clock.now();
    const item: ItemRow = {
      id,
      repository: req.repository,
      name: req.name,
      version: req.version,
      digest,
      size: state.size,
      media_type: req.mediaType ?? 'application/octet-stream',
      // Names and versions are ASCII (NAME_RE, VERSION_RE): characters are bytes.
      file_name: req.fileName ?? `${req.name}-${req.version}`.slice(0, MAX_FILE_NAME_BYTES),
      status: 'quarantined',
      status_reason: 'Waiting for the first scan',
      status_by: 'gate',
      policy_version: null,
      scan_state: 'pending',
      scanned_at: null,
      uploaded_by: req.actor,
      created_at: now,
    };
    const blobRow = {
      digest,
      blob_key: blobKey,
      size: state.size,
      stored_size: stat.size,
      header: header.bytes.toString('base64'),
      key_id: wrapped.keyId,
      wrapped_key: wrapped.wrapped.toString('base64'),
      created_at: now,
    };
    const deduplicated = await commit(ctx, item, blobRow, blobKey);
    keepBlob = !deduplicated;
    return { item, deduplicated };
  } finally {
    stopHeartbeat();
    if (!keepBlob) {
      if (committedBlob) await ctx.blobs.delete(blobKey).catch(() => undefined);
      await db
        .deleteFrom('artifacts_pending')
        .where('blob_key', '=', blobKey)
        .execute()
        .catch(() => undefined);
    }
    key.fill(0);
  }
}

function alreadyExists(req: Pick<UploadRequest, 'repository' | 'name' | 'version'>): GatewayError {
  return new GatewayError('GW_ERR_ARTIFACTS_ALREADY_EXISTS', {
    message: `Repository "${req.repository}" already has "${req.name}@${req.version}"`,
    details: { repository: req.repository, name: req.name, version: req.version },
  });
}

/**
 * Writes metadata in one transaction; returns true when the digest was already stored. Locks are
 * taken in the order deleteArtifact takes them (blob row, then artifact row); a transaction
 * aborted on a lock conflict anyway runs once more (see retryOnLockConflict).
 */
async function commit(
  ctx: ArtifactContext,
  item: ItemRow,
  blobRow: ArtifactTables['artifacts_blobs'],
  blobKey: string,
): Promise<boolean> {
  try {
    const transaction = () =>
      ctx.db.transaction<boolean, ArtifactTables>(async (trx) => {
        await lockQuota(ctx, trx, item.repository);
        await checkQuota(ctx, trx, item.repository, item.size);
        const queued = await trx
          .selectFrom('artifacts_scan_jobs')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirst();
        if (Number(queued?.n ?? 0) >= ctx.config().scan.queueLimit) {
          throw new GatewayError('GW_ERR_ARTIFACTS_SCAN_QUEUE_FULL', { message: 'The scan queue is full' });
        }
        // Another upload of the same bytes may commit between a lookup and an insert (PostgreSQL,
        // read committed): the insert then waits for it and keeps its blob, instead of failing on
        // the digest key, which was reported as this artifact already existing. When the digest is
        // known, the no-op update locks its row until this commit, so a delete of the last other
        // artifact (which locks the same row, see deleteArtifact) either finishes first, and the
        // insert stores this blob anew, or waits and then sees this artifact referencing it.
        const stored = await trx
          .insertInto('artifacts_blobs')
          .values(blobRow)
          .onConflict((oc) =>
            oc.column('digest').doUpdateSet((eb) => ({ created_at: eb.ref('artifacts_blobs.created_at') })),
          )
          .returning('blob_key')
          .executeTakeFirstOrThrow();
        const known = stored.blob_key !== blobKey;
        await trx.insertInto('artifacts_items').values(item).execute();
        await trx
          .insertInto('artifacts_scan_jobs')
          .values({
            id: randomUUID(),
            artifact_id: item.id,
            attempts: 0,
            next_run_at: item.created_at,
            lease_until: null,
            last_error: null,
            created_at: item.created_at,
          })
          .execute();
        await trx.deleteFrom('artifacts_pending').where('blob_key', '=', blobKey).execute();
        return known;
      });
    return await retryOnLockConflict('upload commit', transaction);
  } catch (error) {
    if (isUniqueViolation(error)) throw alreadyExists(item);
    throw error;
  }
}
