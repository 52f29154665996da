import { sql } from 'kysely';
import type { Migration } from '#core/storage';

/** Verdict of the policy gate. `quarantined` until the first scan finished. */
export type ArtifactStatus = 'quarantined' | 'approved' | 'blocked';
export type ScanState = 'pending' | 'scanning' | 'done' | 'failed';

/** Content stored once per plaintext digest (deduplication), with its wrapped data key. */
export interface BlobRow {
  digest: string;
  blob_key: string;
  size: number;
  stored_size: number;
  header: string;
  key_id: string;
  wrapped_key: string;
  created_at: number;
}

/** One artifact: a named, versioned reference to a blob in a repository. */
export interface ItemRow {
  id: string;
  repository: string;
  name: string;
  version: string;
  digest: string;
  size: number;
  media_type: string;
  file_name: string;
  status: ArtifactStatus;
  status_reason: string;
  status_by: string;
  policy_version: string | null;
  scan_state: ScanState;
  scanned_at: number | null;
  uploaded_by: string;
  created_at: number;
}

/** A write in progress: its blob key is protected from the orphan sweep until it commits. */
export interface PendingRow {
  blob_key: string;
  instance: string;
  heartbeat_at: number;
}

/** The persistent scan queue. */
export interface ScanJobRow {
  id: string;
  artifact_id: string;
  attempts: number;
  next_run_at: number;
  lease_until: number | null;
  last_error: string | null;
  created_at: number;
}

export interface ScanReportRow {
  artifact_id: string;
  report: string;
  sbom: string;
  scanner: string;
  created_at: number;
}

export interface SignatureRow {
  id: string;
  digest: string;
  /**
   * The repository of the artifact it was added to: it counts for that repository's copies of
   * the digest only. Null for a signature from before 0003 whose digest several repositories held.
   */
  repository: string | null;
  kind: 'key' | 'x509';
  bundle: string;
  identity: string;
  created_by: string;
  created_at: number;
}

/** A single-use browser download ticket; only the ticket's SHA-256 is kept. */
export interface DownloadTicketRow {
  hash: string;
  artifact_id: string;
  /** The Principal as authenticated when the ticket was issued (JSON). */
  principal: string;
  client_ip: string;
  expires_at: number;
}

/** The door's tables, for Kysely. */
export interface ArtifactTables {
  artifacts_blobs: BlobRow;
  artifacts_items: ItemRow;
  artifacts_pending: PendingRow;
  artifacts_scan_jobs: ScanJobRow;
  artifacts_scan_reports: ScanReportRow;
  artifacts_signatures: SignatureRow;
  artifacts_download_tickets: DownloadTicketRow;
}

/** Forward-only migrations of the artifacts door. */
export const ARTIFACT_MIGRATIONS: readonly Migration[] = [
  {
    id: '0001_artifacts',
    async up(db) {
      await db.schema
        .createTable('artifacts_blobs')
        .addColumn('digest', 'text', (c) => c.primaryKey())
        .addColumn('blob_key', 'text', (c) => c.notNull().unique())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('stored_size', 'bigint', (c) => c.notNull())
        .addColumn('header', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('wrapped_key', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('artifacts_items')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('repository', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('digest', 'text', (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('media_type', 'text', (c) => c.notNull())
        .addColumn('file_name', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('status_reason', 'text', (c) => c.notNull())
        .addColumn('status_by', 'text', (c) => c.notNull())
        .addColumn('policy_version', 'text')
        .addColumn('scan_state', 'text', (c) => c.notNull())
        .addColumn('scanned_at', 'bigint')
        .addColumn('uploaded_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('artifacts_items_coordinates', ['repository', 'name', 'version'])
        .execute();
      await db.schema.createIndex('artifacts_items_digest').on('artifacts_items').column('digest').execute();
      await db.schema
        .createTable('artifacts_pending')
        .addColumn('blob_key', 'text', (c) => c.primaryKey())
        .addColumn('instance', 'text', (c) => c.notNull())
        .addColumn('heartbeat_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('artifacts_scan_jobs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('artifact_id', 'text', (c) => c.notNull().unique())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('next_run_at', 'bigint', (c) => c.notNull())
        .addColumn('lease_until', 'bigint')
        .addColumn('last_error', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('artifacts_scan_reports')
        .addColumn('artifact_id', 'text', (c) => c.primaryKey())
        .addColumn('report', 'text', (c) => c.notNull())
        .addColumn('sbom', 'text', (c) => c.notNull())
        .addColumn('scanner', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('artifacts_signatures')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('digest', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('bundle', 'text', (c) => c.notNull())
        .addColumn('identity', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await sql`CREATE INDEX artifacts_signatures_digest ON artifacts_signatures (digest)`.execute(db);
    },
  },
  {
    id: '0002_download_tickets',
    async up(db) {
      await db.schema
        .createTable('artifacts_download_tickets')
        .addColumn('hash', 'text', (c) => c.primaryKey())
        .addColumn('artifact_id', 'text', (c) => c.notNull())
        .addColumn('principal', 'text', (c) => c.notNull())
        .addColumn('client_ip', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
  {
    // Signatures were kept per digest, which the store shares across repositories: one added by
    // a publisher of one repository showed (and counted for trust) on another's copy. An old
    // signature whose digest one repository holds belongs to it; others stay unscoped (null).
    id: '0003_signature_repository',
    async up(db) {
      await db.schema.alterTable('artifacts_signatures').addColumn('repository', 'text').execute();
      await sql`UPDATE artifacts_signatures SET repository = (
          SELECT min(i.repository) FROM artifacts_items i WHERE i.digest = artifacts_signatures.digest)
        WHERE (SELECT count(DISTINCT i.repository) FROM artifacts_items i
          WHERE i.digest = artifacts_signatures.digest) = 1`.execute(db);
      await sql`CREATE INDEX artifacts_signatures_digest_repository ON artifacts_signatures (digest, repository)`.execute(
        db,
      );
    },
  },
];
