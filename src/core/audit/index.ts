/**
 * core/audit: the append-only, hash-chained audit trail.
 * @module
 */
export type {
  AuditDecision,
  AuditEvent,
  AuditInput,
  AuditLog,
  AuditPage,
  AuditQuery,
  AuditVerification,
} from './port.ts';
/**
 * Creates the audit log over a Database and a JSONL file (runs its migrations); events are
 * group-committed, and the owner calls `close()` before closing the database.
 */
export { type AuditLogOptions, type ClosableAuditLog, createAuditLog } from './audit-log.ts';
/** The `audit` configuration section. */
export { type AuditConfig, auditConfigSchema } from './config.ts';
/** The hash-chain rule, for tools that verify an exported JSONL file offline. */
export { canonicalJson, eventHash, GENESIS_HASH } from './chain.ts';
/** The audit tables' migrations. */
export { AUDIT_MIGRATIONS } from './migrations.ts';
