/** The outcome recorded with every event. */
export type AuditDecision = 'allow' | 'deny' | 'error' | 'info';

/** What callers pass in; the audit module adds sequence, time and hashes. */
export interface AuditInput {
  /** Principal id or `anonymous`/`system`. */
  readonly actor: string;
  /** Dotted verb, e.g. `auth.login`, `registry.decision`, `edge.connection.blocked`. */
  readonly action: string;
  /** What was acted on, e.g. `npm:lodash@4.17.21`, `artifact:…`, `route:api.example.test`. */
  readonly resource: string;
  readonly decision: AuditDecision;
  readonly reason?: string;
  readonly requestId?: string;
  readonly clientIp?: string;
  /** Small structured facts (rule results, byte counts); never secrets. */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** A stored, hash-chained audit event. */
export interface AuditEvent extends AuditInput {
  readonly seq: number;
  readonly time: string;
  readonly prevHash: string;
  readonly hash: string;
}

export interface AuditQuery {
  readonly actor?: string;
  readonly action?: string;
  /** Prefix match on resource. */
  readonly resource?: string;
  readonly decision?: AuditDecision;
  readonly from?: string;
  readonly to?: string;
  readonly limit?: number;
  /** Opaque cursor from the previous page. */
  readonly cursor?: string;
}

export interface AuditPage {
  readonly events: readonly AuditEvent[];
  readonly nextCursor?: string;
}

export interface AuditVerification {
  readonly ok: boolean;
  readonly checked: number;
  /** First sequence number where the chain breaks, and how. */
  readonly firstBad?: { readonly seq: number; readonly problem: string };
}

/**
 * The audit trail: append-only, hash-chained, in the database and a JSONL file. `record`
 * never throws into the caller's request path; failures are logged and counted.
 */
export interface AuditLog {
  record(event: AuditInput): Promise<void>;
  query(query: AuditQuery): Promise<AuditPage>;
  verify(): Promise<AuditVerification>;
}
