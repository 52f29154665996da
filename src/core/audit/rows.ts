import type { AuditDecision, AuditEvent } from './port.ts';

/** The audit tables as Kysely sees them. */
export interface AuditTables {
  audit_events: AuditRow;
  audit_head: { id: number; seq: number; hash: string };
}

export interface AuditRow {
  seq: number;
  time: string;
  actor: string;
  action: string;
  resource: string;
  decision: string;
  reason: string | null;
  request_id: string | null;
  client_ip: string | null;
  details: string | null;
  prev_hash: string;
  hash: string;
}

/** A stored row as the event it was hashed from. */
export function rowToEvent(row: AuditRow): AuditEvent {
  return {
    seq: Number(row.seq),
    time: row.time,
    actor: row.actor,
    action: row.action,
    resource: row.resource,
    decision: row.decision as AuditDecision,
    ...(row.reason === null ? {} : { reason: row.reason }),
    ...(row.request_id === null ? {} : { requestId: row.request_id }),
    ...(row.client_ip === null ? {} : { clientIp: row.client_ip }),
    ...(row.details === null ? {} : { details: JSON.parse(row.details) as Record<string, unknown> }),
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

/** An event as a row. */
export function eventToRow(event: AuditEvent): AuditRow {
  return {
    seq: event.seq,
    time: event.time,
    actor: event.actor,
    action: event.action,
    resource: event.resource,
    decision: event.decision,
    reason: event.reason ?? null,
    request_id: event.requestId ?? null,
    client_ip: event.clientIp ?? null,
    details: event.details === undefined ? null : JSON.stringify(event.details),
    prev_hash: event.prevHash,
    hash: event.hash,
  };
}
