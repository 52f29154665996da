import { GatewayError } from '#core/errors';
import type { Database } from '#core/storage';
import type { AuditPage, AuditQuery } from './port.ts';
import { type AuditTables, rowToEvent } from './rows.ts';

function encodeCursor(seq: number): string {
  return Buffer.from(JSON.stringify({ before: seq })).toString('base64url');
}

function decodeCursor(cursor: string): number {
  try {
    const value = (JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { before?: unknown })
      .before;
    if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) return value;
  } catch {
    // Reported below with the same message as a well-formed but wrong cursor.
  }
  throw new GatewayError('GW_ERR_REQUEST_INVALID', { message: 'The cursor is not one this server returned' });
}

/** An ISO 8601 date, or date and time with an optional offset (RFC 3339 allows a space for "T"). */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?)?$/;

function isoTime(text: string, name: string): string {
  const m = ISO_TIME.exec(text);
  // Date.parse takes much more ("1" is 2001, "Jan 1 2026" is in the server's time zone) and reads
  // a time without an offset in the server's zone: here it is UTC, on every server.
  let ms = Number.NaN;
  if (m !== null) {
    const normal = text.length > 10 ? `${text.slice(0, 10)}T${text.slice(11).toUpperCase()}` : text;
    ms = Date.parse(text.length > 10 && m[1] === undefined ? `${normal}Z` : normal);
  }
  if (Number.isNaN(ms)) {
    throw new GatewayError('GW_ERR_REQUEST_INVALID', {
      message: `"${name}" must be an ISO 8601 time`,
      details: { [name]: text },
    });
  }
  return new Date(ms).toISOString();
}

/**
 * One page of events, newest first, filtered by actor, action, resource prefix, decision and
 * time range. Paging is by keyset on `seq`, so pages stay stable while new events arrive.
 */
export async function queryEvents(db: Database, query: AuditQuery, maxPageSize: number): Promise<AuditPage> {
  const limit = Math.min(Math.max(1, query.limit ?? 100), maxPageSize);
  let q = db
    .kysely<AuditTables>()
    .selectFrom('audit_events')
    .selectAll()
    .orderBy('seq', 'desc')
    .limit(limit + 1);
  if (query.cursor !== undefined) q = q.where('seq', '<', decodeCursor(query.cursor));
  if (query.actor !== undefined) q = q.where('actor', '=', query.actor);
  if (query.action !== undefined) q = q.where('action', '=', query.action);
  if (query.decision !== undefined) q = q.where('decision', '=', query.decision);
  if (query.from !== undefined) q = q.where('time', '>=', isoTime(query.from, 'from'));
  if (query.to !== undefined) q = q.where('time', '<', isoTime(query.to, 'to'));
  if (query.resource !== undefined) {
    const prefix = query.resource;
    q = q.where((eb) => eb(eb.fn('substr', ['resource', eb.val(1), eb.val(prefix.length)]), '=', prefix));
  }
  const rows = await q.execute();
  const events = rows.slice(0, limit).map((r) => rowToEvent(r));
  const last = events.at(-1);
  return rows.length > limit && last !== undefined
    ? { events, nextCursor: encodeCursor(last.seq) }
    : { events };
}
