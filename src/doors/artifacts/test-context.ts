import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditInput } from '#core/audit';
import { validateRaw } from '#core/config';
import { silentLogger } from '#core/log';
import { createMetrics } from '#core/metrics';
import { createSqliteDatabase, type Database } from '#core/storage';
import { createFsBlobStore } from './blob/fs-store.ts';
import type { BlobStore } from './blob/port.ts';
import { type ArtifactsConfig, artifactsConfigSchema } from './config.ts';
import type { ArtifactContext } from './context.ts';
import { createKeyring } from './crypto/keyring.ts';
import { createArtifactMetrics } from './metrics.ts';
import { ARTIFACT_MIGRATIONS } from './store/schema.ts';

/** A door context on a temporary SQLite file and filesystem store, for the door's unit tests. */
export interface TestContext extends AsyncDisposable {
  readonly ctx: ArtifactContext;
  readonly root: string;
  readonly db: Database;
  readonly blobs: BlobStore;
  readonly events: AuditInput[];
  /** Replaces the configuration (as a reload would). */
  configure(raw: Record<string, unknown>): void;
  /** A second context on the same data, as a restarted process would see it. */
  reopen(): Promise<TestContext>;
}

/** Builds a TestContext; `raw` is an `artifacts` section validated by the real schema. */
export async function createTestContext(
  raw: Record<string, unknown> = {},
  root?: string,
): Promise<TestContext> {
  const folder = root ?? mkdtempSync(join(tmpdir(), 'gh-artifacts-'));
  const db = await createSqliteDatabase({ file: join(folder, 'meta.sqlite') });
  await db.migrate({ module: 'artifacts', migrations: ARTIFACT_MIGRATIONS });
  const blobs = createFsBlobStore({ root: join(folder, 'blobs') });
  let config: ArtifactsConfig = validateRaw(artifactsConfigSchema, raw, 'test');
  const events: AuditInput[] = [];
  const masterKey = { id: 'default', key: Buffer.alloc(32, 7) };
  const ctx: ArtifactContext = {
    db,
    blobs,
    keyring: createKeyring([masterKey], 'default'),
    clock: { now: () => Date.now() },
    log: silentLogger(),
    metrics: createArtifactMetrics(createMetrics({ processMetrics: false })),
    instance: randomUUID(),
    config: () => config,
    audit: async (event) => {
      events.push(event);
    },
  };
  return {
    ctx,
    root: folder,
    db,
    blobs,
    events,
    configure(next) {
      config = validateRaw(artifactsConfigSchema, next, 'test');
    },
    reopen: () => createTestContext(raw, folder),
    async [Symbol.asyncDispose]() {
      await db.close();
      if (root === undefined) rmSync(folder, { recursive: true, force: true });
    },
  };
}
