import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { App, ConfigSection, CoreServices } from '#core/app';
import { VulnerabilityDatabase } from '#core/vulndb';
import { createFsBlobStore } from './blob/fs-store.ts';
import type { BlobStore } from './blob/port.ts';
import { createS3BlobStore } from './blob/s3-store.ts';
import type { ArtifactsConfig } from './config.ts';
import { auditWith, type ArtifactContext } from './context.ts';
import { loadKeyring } from './crypto/master-keys.ts';
import { registerDownloadRoutes } from './download-routes.ts';
import { createArtifactMetrics } from './metrics.ts';
import { loadSigningKey, registerExtraRoutes } from './routes-extra.ts';
import { registerArtifactRoutes } from './routes.ts';
import { createBuiltinScanner } from './scan/builtin.ts';
import type { Scanner } from './scan/port.ts';
import { createScanQueue, type ScanQueue } from './scan/queue.ts';
import { createTrivyScanner, trivyAvailable } from './scan/trivy.ts';
import { createTrustService } from './sign/service.ts';
import { compileTrust } from './sign/trust.ts';
import { checkGateRules } from './gate.ts';
import { ARTIFACT_MIGRATIONS } from './store/schema.ts';
import { sweep } from './sweep.ts';

/** The dynamic parts that must compile: the signature trust and the policy gate's rules. */
function checkReloadable(config: ArtifactsConfig): void {
  compileTrust(config.trust);
  checkGateRules(config.policy.rules);
}

function blobStoreOf(config: ArtifactsConfig, dataDir: string): BlobStore {
  const b = config.blobStore;
  if (b.kind === 'fs')
    return createFsBlobStore({ root: b.path === '' ? join(dataDir, 'artifacts') : b.path });
  for (const key of ['endpoint', 'bucket', 'accessKeyId', 'secretAccessKey'] as const) {
    if (b.s3[key] === '')
      throw new TypeError(`artifacts.blobStore.s3.${key} is required when blobStore.kind is "s3"`);
  }
  return createS3BlobStore({ ...b.s3 });
}

/** The artifacts door with its internals exposed for tests and the CLI. */
export interface ArtifactsDoor extends App {
  /** The door's context once provisioned. */
  context(): ArtifactContext;
  /** The scan queue once provisioned. */
  scanQueue(): ScanQueue;
}

/** Creates the artifacts door (see index.ts). */
export function createArtifactsDoor(
  _core: CoreServices,
  section: ConfigSection<ArtifactsConfig>,
): ArtifactsDoor {
  let ctx: ArtifactContext | undefined;
  let queue: ScanQueue | undefined;
  let sweepTimer: NodeJS.Timeout | undefined;
  const need = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('The artifacts door is not provisioned');
    return v;
  };
  const enabled = () => section.current().enabled;
  let unvet: (() => void) | undefined;

  return {
    name: 'artifacts',
    context: () => need(ctx),
    scanQueue: () => need(queue),
    async provision(core) {
      if (!enabled()) return;
      const config = section.current();
      // A reload whose trust or gate does not compile is refused as a whole: every download
      // would otherwise recompile (and log) the bad trust, and every scan fail on the bad gate.
      unvet = section.vet?.(checkReloadable, 'artifacts');
      await core.db.migrate({ module: 'artifacts', migrations: ARTIFACT_MIGRATIONS });
      const log = core.log.child({ door: 'artifacts' });
      const blobs = blobStoreOf(config, core.dataDir);
      const keyring = await loadKeyring(config.encryption, join(core.dataDir, 'artifacts', 'master.key'));
      const context: ArtifactContext = {
        db: core.db,
        blobs,
        keyring,
        clock: core.clock,
        log,
        metrics: createArtifactMetrics(core.metrics),
        instance: randomUUID(),
        config: () => section.current(),
        audit: auditWith(core.audit, log),
      };
      ctx = context;
      const vulndb = new VulnerabilityDatabase({ db: core.db, clock: core.clock, config: config.vulndb });
      await vulndb.migrate();
      const builtin = createBuiltinScanner({
        clock: core.clock,
        vulnerabilities: vulndb,
        timeoutMs: () => section.current().scan.timeout,
        limits: () => {
          const s = section.current().scan;
          return {
            maxEntries: s.maxEntries,
            maxExpandedSize: s.maxExpandedSize,
            maxDepth: s.maxDepth,
            maxRatio: s.maxRatio,
            maxBufferedFile: 256 * 1024 * 1024,
          };
        },
      });
      const trivy =
        config.scan.trivy === 'auto' && trivyAvailable()
          ? createTrivyScanner(core.clock, { timeoutMs: () => section.current().scan.trivyTimeout })
          : undefined;
      const scanner = (): Scanner => trivy ?? builtin;
      queue = createScanQueue(context, scanner);
      const trust = createTrustService(context);
      const signingPem =
        config.signing.keyFile === '' ? undefined : readFileSync(config.signing.keyFile, 'utf8');
      const signingKey = loadSigningKey(signingPem);
      const deps = { core, ctx: context, queue, trust };
      registerArtifactRoutes(core.http.app, deps);
      registerDownloadRoutes(core.http.app, deps);
      registerExtraRoutes(core.http.app, deps, () => signingKey);
      core.health.register('door:artifacts', async () => {
        await blobs.ping();
        return { ok: true, detail: `blob store ${blobs.kind}, scanner ${scanner().name}` };
      });
    },
    async validate() {
      if (!enabled()) return;
      checkReloadable(section.current());
      need(ctx);
    },
    async start() {
      if (!enabled()) return;
      const context = need(ctx);
      // Before accepting uploads: every staging file and pending row of a previous process is a leftover.
      await sweep(context, true);
      need(queue).start();
      sweepTimer = setInterval(() => {
        void sweep(context, false).catch((error: unknown) =>
          context.log.warn('artifacts sweep failed', { error }),
        );
      }, section.current().sweep.interval);
      sweepTimer.unref();
    },
    async stop(deadline) {
      unvet?.();
      if (sweepTimer !== undefined) clearInterval(sweepTimer);
      await queue?.stop(deadline);
      await ctx?.blobs.close();
    },
    async [Symbol.asyncDispose]() {
      await this.stop(AbortSignal.timeout(5000));
    },
  };
}
