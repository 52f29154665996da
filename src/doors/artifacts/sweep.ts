import type { ArtifactContext } from './context.ts';
import { purgeTickets } from './download-tickets.ts';
import type { ArtifactTables } from './store/schema.ts';

/** What one sweep removed. */
export interface SweepResult {
  readonly abandonedUploads: number;
  readonly orphanBlobs: number;
  readonly stagingFiles: number;
  readonly expiredTickets: number;
}

/**
 * Resolves what crashed or abandoned uploads left: pending rows of other instances (on SQLite
 * there is only ever one process, so all of them; on PostgreSQL those without a recent
 * heartbeat), blobs that no metadata row and no pending upload references, and staging leftovers.
 * `startup` is true before the door accepts uploads, when every staging file is a leftover.
 */
export async function sweep(ctx: ArtifactContext, startup: boolean): Promise<SweepResult> {
  const db = ctx.db.kysely<ArtifactTables>();
  const staleAfter = ctx.config().sweep.staleAfter;
  const cutoff = ctx.db.dialect === 'sqlite' ? Number.MAX_SAFE_INTEGER : ctx.clock.now() - staleAfter;
  const abandoned = await db
    .selectFrom('artifacts_pending')
    .selectAll()
    .where('instance', '!=', ctx.instance)
    .where('heartbeat_at', '<', cutoff)
    .execute();
  for (const row of abandoned) {
    await ctx.blobs.delete(row.blob_key);
    await db.deleteFrom('artifacts_pending').where('blob_key', '=', row.blob_key).execute();
  }
  const known = new Set(
    (await db.selectFrom('artifacts_blobs').select('blob_key').execute()).map((r) => r.blob_key),
  );
  const pending = new Set(
    (await db.selectFrom('artifacts_pending').select('blob_key').execute()).map((r) => r.blob_key),
  );
  let orphanBlobs = 0;
  for await (const blob of ctx.blobs.list('b/')) {
    if (known.has(blob.key) || pending.has(blob.key)) continue;
    // A blob committed after the two queries above has a pending row written before it; re-check.
    const stillPending = await db
      .selectFrom('artifacts_pending')
      .select('blob_key')
      .where('blob_key', '=', blob.key)
      .executeTakeFirst();
    const stillKnown = await db
      .selectFrom('artifacts_blobs')
      .select('blob_key')
      .where('blob_key', '=', blob.key)
      .executeTakeFirst();
    if (stillPending !== undefined || stillKnown !== undefined) continue;
    if (await ctx.blobs.delete(blob.key)) orphanBlobs += 1;
  }
  const stagingFiles = await ctx.blobs.sweepStaging(startup && ctx.db.dialect === 'sqlite' ? 0 : staleAfter);
  const expiredTickets = await purgeTickets(ctx);
  const result = { abandonedUploads: abandoned.length, orphanBlobs, stagingFiles, expiredTickets };
  if (result.abandonedUploads + orphanBlobs + stagingFiles + expiredTickets > 0)
    ctx.log.info('artifacts sweep removed leftovers', { ...result });
  return result;
}
