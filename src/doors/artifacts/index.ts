/**
 * The artifacts door: a secure artifact store. Streamed uploads with SHA-256, envelope
 * encryption at rest in segmented AES-256-GCM, a filesystem or S3-compatible blob store,
 * a persistent scan queue with the built-in archive scanner (or Trivy), a core/policy gate,
 * Sigstore/x509 signatures with a fail-closed trust policy before every download, and RBAC
 * per repository. Routes live under `/api/artifacts` on the main HTTP server.
 * @module
 */
import type { ConfigSection, CoreServices } from '#core/app';
import type { ArtifactsConfig as Config } from './config.ts';
import { type ArtifactsDoor as Door, createArtifactsDoor as create } from './door.ts';

/** The `artifacts` configuration section. */
export { artifactsConfigSchema } from './config.ts';

/** The parsed `artifacts` section. */
export type ArtifactsConfig = Config;

/** The door with access to its context and scan queue (tests, CLI). */
export type ArtifactsDoor = Door;

/** The public shape of an artifact in API answers (the CLI prints it). */
export type { ArtifactView } from './service.ts';

/** Sigstore bundle helpers the CLI uses to sign and verify locally. */
export { buildBundle, keyHint, parseBundle, signStream, type SigstoreBundle } from './sign/bundle.ts';

/**
 * Creates the artifacts door. `provision` runs migrations, loads the master keys, opens the
 * blob store and registers the routes; `start` sweeps what a crash left and starts the scan
 * worker; `stop` drains running scans.
 */
export function createArtifactsDoor(core: CoreServices, config: ConfigSection<Config>): Door {
  return create(core, config);
}
