import type { Clock } from '#core/app';
import type { AuditInput, AuditLog } from '#core/audit';
import type { Logger } from '#core/log';
import type { Database } from '#core/storage';
import type { BlobStore } from './blob/port.ts';
import type { ArtifactsConfig } from './config.ts';
import type { Keyring } from './crypto/keyring.ts';
import type { ArtifactMetrics } from './metrics.ts';

/** What the door's services share: storage, keys, clock, audit and the live configuration. */
export interface ArtifactContext {
  readonly db: Database;
  readonly blobs: BlobStore;
  readonly keyring: Keyring;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: ArtifactMetrics;
  /** Id of this process, so the sweep can tell its own in-flight uploads from a crashed one's. */
  readonly instance: string;
  config(): ArtifactsConfig;
  audit(event: AuditInput): Promise<void>;
}

/** Wraps the audit log so an audit failure never breaks the request (the port promises the same). */
export function auditWith(audit: AuditLog, log: Logger): (event: AuditInput) => Promise<void> {
  return async (event) => {
    try {
      await audit.record(event);
    } catch (error) {
      log.error('audit record failed', { error, action: event.action });
    }
  };
}
