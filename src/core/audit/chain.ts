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

/** The members an event may have besides `hash`, in canonical (code unit) order. */
const EVENT_MEMBERS = [
  'action',
  'actor',
  'clientIp',
  'decision',
  'details',
  'prevHash',
  'reason',
  'requestId',
  'resource',
  'seq',
  'time',
] as const;
const MEMBER_BIT = new Map<string, number>([
  ['hash', 0],
  ...EVENT_MEMBERS.map((m, i) => [m, 1 << i] as const),
]);
const MEMBERS = EVENT_MEMBERS.map((name, i) => ({ name, bit: 1 << i, key: `${JSON.stringify(name)}:` }));

/**
 * `canonicalJson` of the event without its `hash`, byte for byte, without sorting: the members
 * of an event are known, so they are written in their fixed order. An object with any other
 * member takes the general path. Every event is hashed when it is written and again when the
 * chain is verified, so this is on the audit hot path.
 */
function canonicalEventJson(event: Readonly<Record<string, unknown>>): string {
  // The enumerable own members, as Object.entries in `canonicalJson` sees them.
  let present = 0;
  for (const name in event) {
    const bit = MEMBER_BIT.get(name);
    if (bit === undefined || !Object.hasOwn(event, name)) {
      const { hash: _ignored, ...rest } = event;
      return canonicalJson(rest);
    }
    present |= bit;
  }
  let text = '{';
  for (const { name, bit, key } of MEMBERS) {
    if ((present & bit) === 0) continue;
    const value = event[name];
    if (value === undefined) continue;
    if (text.length > 1) text += ',';
    text += key;
    text += typeof value === 'string' ? JSON.stringify(value) : canonicalJson(value);
  }
  return `${text}}`;
}

/** `sha256(prevHash + canonical JSON of the event without its hash)`, hex. */
export function eventHash(event: Omit<AuditEvent, 'hash'>): string {
  const text = canonicalEventJson(event);
  return createHash('sha256').update(event.prevHash).update(text).digest('hex');
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
