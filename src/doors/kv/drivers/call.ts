import { GatewayError, isGatewayError } from '#core/errors';
import type { KvEntry, SetItem, SetOptions, TtlInfo } from './driver.ts';

/**
 * Runs one backend operation under the caller's deadline. A backend that hangs (a stopped
 * server, a half-open socket) must not hang the RPC: when `signal` aborts first the call
 * fails with UNAVAILABLE even though the operation may still be running in the client library.
 * Backend errors become UNAVAILABLE with the original kept as `cause` (for the log only).
 */
export async function withDeadline<T>(
  driver: string,
  operation: string,
  signal: AbortSignal,
  run: () => Promise<T>,
): Promise<T> {
  if (signal.aborted) throw unavailable(driver, operation, signal.reason);
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(unavailable(driver, operation, signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([run(), aborted]);
  } catch (error) {
    if (isGatewayError(error)) throw error;
    throw unavailable(driver, operation, error);
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
  }
}

function unavailable(driver: string, operation: string, cause: unknown): GatewayError {
  return new GatewayError('GW_ERR_KV_BACKEND_UNAVAILABLE', {
    message: `Backend "${driver}" did not complete "${operation}"`,
    details: { driver },
    cause,
  });
}

/** What `getMany` throws when the values it finds hold more than its `maxBytes`. */
export function answerTooLarge(maxBytes: number): GatewayError {
  return new GatewayError('GW_ERR_KV_PAYLOAD_TOO_LARGE', {
    message: `keys: the values found hold more than the ${maxBytes} bytes one answer may carry; ask for fewer keys`,
    details: { field: 'keys', limit: maxBytes },
  });
}

/** A running total of value bytes that throws `answerTooLarge` once it passes `maxBytes`. */
export function byteBudget(maxBytes: number): (bytes: number) => void {
  let total = 0;
  return (bytes) => {
    total += bytes;
    if (total > maxBytes) throw answerTooLarge(maxBytes);
  };
}

/** `getMany` of a driver that reads one key at a time: it stops at the first value over budget. */
export function getEach(
  keys: readonly string[],
  maxBytes: number,
  get: (key: string) => KvEntry | undefined,
): (KvEntry | undefined)[] {
  const spend = byteBudget(maxBytes);
  return keys.map((key) => {
    const entry = get(key);
    spend(entry?.value.length ?? 0);
    return entry;
  });
}

/** The CAS failure every driver throws. */
export function versionConflict(key: string, expected: number): GatewayError {
  return new GatewayError('GW_ERR_KV_VERSION_CONFLICT', {
    message: `Key "${key.slice(0, 64)}" is not at version ${expected}`,
    details: { expectedVersion: expected },
  });
}

const encoder = new TextEncoder();

/** Orders keys by their UTF-8 bytes, as SQLite BINARY, PostgreSQL "C" and Redis lex ranges do. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(encoder.encode(a), encoder.encode(b));
}

/** The TTL/metadata part of SetOptions as a SetItem wants it. */
export function pick(o: SetOptions): Omit<SetItem, 'key' | 'value'> {
  return {
    ...(o.ttlMs === undefined ? {} : { ttlMs: o.ttlMs }),
    ...(o.metadata === undefined ? {} : { metadata: o.metadata }),
  };
}

/** What `ttl` reports for an entry read at `now`. */
export function ttlOf(e: KvEntry | undefined, now: number): TtlInfo | undefined {
  if (e === undefined) return undefined;
  if (e.expiresAt === undefined) return { expires: false, remainingMs: 0 };
  return { expires: true, remainingMs: Math.max(1, e.expiresAt - now) };
}

/**
 * Cuts a sorted run of keys `>= prefix` (fetched with limit + 1) down to the page: sorted order
 * puts every key with the prefix first, so the first key without it ends the listing.
 */
export function takePrefix(sorted: readonly string[], prefix: string, limit: number) {
  const end = sorted.findIndex((k) => !k.startsWith(prefix));
  const matching = end === -1 ? sorted : sorted.slice(0, end);
  return { keys: matching.slice(0, limit), more: matching.length > limit };
}
