import { sql } from 'kysely';
import { GatewayError } from '#core/errors';
import type { ArtifactContext } from './context.ts';
import { retryOnLockConflict } from './retry.ts';
import type { ArtifactStatus, ArtifactTables, ItemRow } from './store/schema.ts';

/** Filters, sort and page of `GET /api/artifacts`. */
export interface ListQuery {
  /** Only these repositories (the caller's visible ones); undefined means all. */
  readonly repositories?: readonly string[];
  readonly repository?: string;
  /** Substring of the name. */
  readonly name?: string;
  readonly version?: string;
  readonly status?: ArtifactStatus;
  readonly sha256?: string;
  readonly sort?: 'name' | 'created' | 'size';
  readonly order?: 'asc' | 'desc';
  readonly limit?: number;
  readonly offset?: number;
}

/** The public shape of an artifact in API answers. */
export interface ArtifactView {
  readonly id: string;
  readonly repository: string;
  readonly name: string;
  readonly version: string;
  readonly sha256: string;
  readonly size: number;
  readonly mediaType: string;
  readonly fileName: string;
  readonly status: ArtifactStatus;
  readonly statusReason: string;
  readonly statusBy: string;
  readonly policyVersion: string | null;
  readonly scanState: string;
  readonly scannedAt: string | null;
  readonly uploadedBy: string;
  readonly createdAt: string;
}

/** Converts a row (bigint columns may arrive as strings from PostgreSQL) to the API shape. */
export function toView(row: ItemRow): ArtifactView {
  return {
    id: row.id,
    repository: row.repository,
    name: row.name,
    version: row.version,
    sha256: row.digest,
    size: Number(row.size),
    mediaType: row.media_type,
    fileName: row.file_name,
    status: row.status,
    statusReason: row.status_reason,
    statusBy: row.status_by,
    policyVersion: row.policy_version,
    scanState: row.scan_state,
    scannedAt: row.scanned_at === null ? null : new Date(Number(row.scanned_at)).toISOString(),
    uploadedBy: row.uploaded_by,
    createdAt: new Date(Number(row.created_at)).toISOString(),
  };
}

const SORT_COLUMNS = { name: 'name', created: 'created_at', size: 'size' } as const;

/** Lists artifacts; returns the page and the total count of matches. */
export async function listArtifacts(
  ctx: ArtifactContext,
  query: ListQuery,
): Promise<{ readonly items: ItemRow[]; readonly total: number }> {
  let q = ctx.db.kysely<ArtifactTables>().selectFrom('artifacts_items');
  if (query.repositories !== undefined) {
    if (query.repositories.length === 0) return { items: [], total: 0 };
    q = q.where('repository', 'in', [...query.repositories]);
  }
  if (query.repository !== undefined) q = q.where('repository', '=', query.repository);
  if (query.name !== undefined) {
    // Names may hold `_` (a LIKE wildcard): escape it and `%` rather than drop them, or
    // "my_lib" would be searched as "mylib" and never found. Case is ignored on both stores:
    // SQLite's LIKE ignores it (ASCII), PostgreSQL's does not, so both sides are lower-cased
    // (names are ASCII, see upload.ts).
    const pattern = `%${query.name.toLowerCase().replace(/[%_\\]/g, '\\$&')}%`;
    q = q.where(sql<boolean>`lower(name) like ${pattern} escape '\\'`);
  }
  if (query.version !== undefined) q = q.where('version', '=', query.version);
  if (query.status !== undefined) q = q.where('status', '=', query.status);
  if (query.sha256 !== undefined) q = q.where('digest', '=', query.sha256);
  const count = await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
  const column = SORT_COLUMNS[query.sort ?? 'created'];
  const items = await q
    .selectAll()
    .orderBy(column, query.order ?? (query.sort === 'name' ? 'asc' : 'desc'))
    .orderBy('id')
    .limit(Math.min(Math.max(query.limit ?? 50, 1), 500))
    .offset(Math.max(query.offset ?? 0, 0))
    .execute();
  return { items, total: Number(count?.n ?? 0) };
}

/** Loads one artifact or throws GW_ERR_ARTIFACTS_NOT_FOUND. */
export async function getArtifact(ctx: ArtifactContext, id: string): Promise<ItemRow> {
  const row = await ctx.db
    .kysely<ArtifactTables>()
    .selectFrom('artifacts_items')
    .selectAll()
    .where('id', '=', id)
    .executeTakeFirst();
  if (row === undefined) {
    throw new GatewayError('GW_ERR_ARTIFACTS_NOT_FOUND', { message: `No artifact "${id}"`, details: { id } });
  }
  return row;
}

/**
 * Deletes an artifact. When it was the last reference to its content, the blob row (and with it
 * the wrapped data key) is destroyed in the same transaction, which makes the stored bytes
 * unreadable even if deleting them fails; the bytes are removed right after that transaction
 * committed, and any that a crash leaves are orphans for the sweep.
 *
 * "Last reference" is decided with the blob row locked (PostgreSQL; SQLite serialises write
 * transactions): an upload deduplicating against the same content locks that row in its commit
 * too, so the count below either waits for that upload and sees its artifact, or runs first and
 * the upload then stores its own blob. The row is locked before the artifact row is deleted,
 * the order of the upload's commit (blob row, then artifact row): deleting first held the
 * artifact's unique (repository, name, version) entry, which an upload of the same version and
 * bytes, holding the blob row, waited on, and PostgreSQL aborted one of the two as a deadlock.
 * A transaction aborted on a lock conflict anyway runs once more (see retryOnLockConflict).
 */
export async function deleteArtifact(
  ctx: ArtifactContext,
  id: string,
): Promise<{ readonly shredded: boolean }> {
  const notFound = () =>
    new GatewayError('GW_ERR_ARTIFACTS_NOT_FOUND', { message: `No artifact "${id}"`, details: { id } });
  const transaction = () =>
    ctx.db.transaction<string | undefined, ArtifactTables>(async (trx) => {
      const row = await trx
        .selectFrom('artifacts_items')
        .select(['digest', 'repository'])
        .where('id', '=', id)
        .executeTakeFirst();
      if (row === undefined) throw notFound();
      let blob = trx.selectFrom('artifacts_blobs').select('blob_key').where('digest', '=', row.digest);
      if (ctx.db.dialect === 'postgres') blob = blob.forUpdate();
      const locked = await blob.executeTakeFirst();
      // A concurrent delete of the same artifact may have committed since the read above.
      const gone = await trx.deleteFrom('artifacts_items').where('id', '=', id).executeTakeFirst();
      if (Number(gone.numDeletedRows) === 0) throw notFound();
      await trx.deleteFrom('artifacts_scan_jobs').where('artifact_id', '=', id).execute();
      await trx.deleteFrom('artifacts_scan_reports').where('artifact_id', '=', id).execute();
      const copy = trx.selectFrom('artifacts_items').select('id').where('digest', '=', row.digest);
      if ((await copy.where('repository', '=', row.repository).executeTakeFirst()) !== undefined)
        return undefined;
      // Signatures count per repository (see signaturesOf): the last copy there takes that
      // repository's along, or a later upload of the same bytes there would arrive signed.
      await trx
        .deleteFrom('artifacts_signatures')
        .where('digest', '=', row.digest)
        .where('repository', '=', row.repository)
        .execute();
      if ((await copy.executeTakeFirst()) !== undefined) return undefined;
      await trx.deleteFrom('artifacts_blobs').where('digest', '=', row.digest).execute();
      await trx.deleteFrom('artifacts_signatures').where('digest', '=', row.digest).execute();
      return locked?.blob_key;
    });
  const blobKey = await retryOnLockConflict('artifact delete', transaction);
  if (blobKey !== undefined) {
    await ctx.blobs
      .delete(blobKey)
      .catch((error: unknown) => ctx.log.warn('blob delete failed; sweep will retry', { error, blobKey }));
  }
  return { shredded: blobKey !== undefined };
}

/** Records a verdict on an artifact. */
export async function setVerdict(
  ctx: ArtifactContext,
  id: string,
  verdict: {
    readonly status: ArtifactStatus;
    readonly reason: string;
    readonly by: string;
    readonly policyVersion?: string;
  },
): Promise<void> {
  await ctx.db
    .kysely<ArtifactTables>()
    .updateTable('artifacts_items')
    .set({
      status: verdict.status,
      status_reason: verdict.reason,
      status_by: verdict.by,
      ...(verdict.policyVersion === undefined ? {} : { policy_version: verdict.policyVersion }),
    })
    .where('id', '=', id)
    .execute();
  ctx.metrics.verdicts.inc({ status: verdict.status, by: verdict.by });
}

/** Rewraps every data key not under the active master key; blobs are not touched. */
export async function rotateKeys(ctx: ArtifactContext): Promise<{ readonly rewrapped: number }> {
  const db = ctx.db.kysely<ArtifactTables>();
  const rows = await db
    .selectFrom('artifacts_blobs')
    .select(['digest', 'key_id', 'wrapped_key'])
    .where('key_id', '!=', ctx.keyring.activeKeyId)
    .execute();
  for (const row of rows) {
    const next = ctx.keyring.rewrap({ keyId: row.key_id, wrapped: Buffer.from(row.wrapped_key, 'base64') });
    await db
      .updateTable('artifacts_blobs')
      .set({ key_id: next.keyId, wrapped_key: next.wrapped.toString('base64') })
      .where('digest', '=', row.digest)
      .where('key_id', '=', row.key_id)
      .execute();
  }
  return { rewrapped: rows.length };
}

/** One repository in `GET /api/artifacts/-/repositories`. */
export interface RepositoryView {
  readonly name: string;
  readonly artifacts: number;
  /** Logical bytes stored (what the quota counts). */
  readonly size: number;
  /** Bytes allowed; 0 means unlimited. */
  readonly quota: number;
  readonly approved: number;
  readonly quarantined: number;
  readonly blocked: number;
  readonly lastUploadAt: string | null;
}

/**
 * Summarises repositories: those holding artifacts plus `extra` (configured quotas, the caller's
 * own bindings) so an empty repository one may upload to is listed too. `visible` undefined means all.
 */
export async function listRepositories(
  ctx: ArtifactContext,
  visible: readonly string[] | undefined,
  extra: readonly string[],
): Promise<RepositoryView[]> {
  if (visible !== undefined && visible.length === 0) return [];
  let q = ctx.db
    .kysely<ArtifactTables>()
    .selectFrom('artifacts_items')
    .select((eb) => [
      'repository',
      eb.fn.countAll<number>().as('artifacts'),
      eb.fn.sum<number>('size').as('size'),
      eb.fn.max<number>('created_at').as('last'),
      sql<number>`sum(case when status = 'approved' then 1 else 0 end)`.as('approved'),
      sql<number>`sum(case when status = 'quarantined' then 1 else 0 end)`.as('quarantined'),
      sql<number>`sum(case when status = 'blocked' then 1 else 0 end)`.as('blocked'),
    ])
    .groupBy('repository');
  if (visible !== undefined) q = q.where('repository', 'in', [...visible]);
  const rows = new Map((await q.execute()).map((r) => [r.repository, r]));
  const names = new Set([
    ...rows.keys(),
    ...extra.filter((n) => visible === undefined || visible.includes(n)),
  ]);
  return [...names]
    .sort((a, b) => a.localeCompare(b))
    .map((name) => {
      const r = rows.get(name);
      return {
        name,
        artifacts: Number(r?.artifacts ?? 0),
        size: Number(r?.size ?? 0),
        quota: ctx.config().quotas[name] ?? ctx.config().defaultQuota,
        approved: Number(r?.approved ?? 0),
        quarantined: Number(r?.quarantined ?? 0),
        blocked: Number(r?.blocked ?? 0),
        lastUploadAt:
          r?.last === undefined || r.last === null ? null : new Date(Number(r.last)).toISOString(),
      };
    });
}
