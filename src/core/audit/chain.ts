import { createHash } from 'node:crypto';
import type { AuditEvent } from './port.ts';

/** The `prevHash` of the first event. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * JSON with object keys sorted at every level and `undefined` members left out, so that the
 * same event hashes the same whether it was just built or read back from the database or file.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const text = JSON.stringify(value);
    return text === undefined ? 'null' : text;
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .toSorted(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** `sha256(prevHash + canonical JSON of the event without its hash)`, hex. */
export function eventHash(event: Omit<AuditEvent, 'hash'>): string {
  const { hash: _ignored, ...rest } = event as AuditEvent;
  return createHash('sha256').update(event.prevHash).update(canonicalJson(rest)).digest('hex');
}

/** What is wrong with one record of a chain, or undefined when it links and hashes correctly. */
export function chainProblem(
  event: AuditEvent,
  expected: { readonly seq: number; readonly prevHash: string },
): string | undefined {
  if (event.seq > expected.seq) return `record ${expected.seq} is missing (removed)`;
  if (event.seq < expected.seq) return `record ${event.seq} appears twice or out of order (inserted)`;
  if (event.prevHash !== expected.prevHash)
    return 'prevHash does not match the previous record (inserted or reordered)';
  if (eventHash(event) !== event.hash) return 'hash does not match the content (changed)';
  return undefined;
}
