import { GatewayError } from '#core/errors';

/** Limits that validation enforces; `maxValueBytes` comes from configuration. */
export interface ValidationLimits {
  readonly maxValueBytes: number;
  readonly maxBatchItems: number;
}

export const NAMESPACE_PATTERN = /^[a-z][a-z0-9-]*[a-z0-9]$/;
export const MAX_NAMESPACE_LENGTH = 63;
export const MAX_KEY_BYTES = 1024;
export const MAX_TTL_SECONDS = 31_536_000;
export const MAX_METADATA_BYTES = 64 * 1024;
/**
 * Deepest nesting of metadata JSON: other languages' parsers stop far earlier than 64 KiB of
 * brackets allows (Python at about 1000 levels, Jackson at 1000), so stored metadata could not be
 * read back there.
 */
export const MAX_METADATA_DEPTH = 64;
export const MAX_PAGE_SIZE = 1000;
export const DEFAULT_PAGE_SIZE = 100;
const MAX_PAGE_TOKEN_LENGTH = 2048;

/** The INVALID_ARGUMENT every check throws: the message names the field, the value is never echoed. */
export function invalidField(field: string, expected: string): GatewayError {
  return new GatewayError('GW_ERR_KV_INVALID_ARGUMENT', {
    message: `Invalid "${field}": ${expected}`,
    details: { field },
  });
}

/** True for a DNS-label-safe namespace (RFC 1123 label rules, lower case). */
export function isNamespace(value: string): boolean {
  return value.length <= MAX_NAMESPACE_LENGTH && NAMESPACE_PATTERN.test(value);
}

export function checkNamespace(value: string): string {
  if (!isNamespace(value)) {
    throw invalidField(
      'namespace',
      'expected 2 to 63 characters of a-z, 0-9 and "-", starting with a letter',
    );
  }
  return value;
}

function utf8Length(value: string): number {
  return Buffer.byteLength(value, 'utf8');
}

/**
 * A key: well-formed UTF-8 (a lone surrogate, possible in Connect JSON, has no UTF-8 form),
 * no NUL, 1 to 1024 bytes. An empty key is allowed only where `allowEmpty` (list prefixes).
 */
export function checkKey(value: string, field = 'key', allowEmpty = false): string {
  if (!value.isWellFormed()) throw invalidField(field, 'expected well-formed UTF-8');
  if (value.includes('\0')) throw invalidField(field, 'must not contain NUL');
  const bytes = utf8Length(value);
  if (bytes === 0 && !allowEmpty) throw invalidField(field, 'must not be empty');
  if (bytes > MAX_KEY_BYTES) throw invalidField(field, `expected at most ${MAX_KEY_BYTES} bytes`);
  return value;
}

export function checkValue(value: Uint8Array, limits: ValidationLimits, field = 'value'): Uint8Array {
  if (value.length > limits.maxValueBytes) {
    throw invalidField(field, `expected at most ${limits.maxValueBytes} bytes`);
  }
  return value;
}

/** Seconds 0..31536000 as milliseconds; 0 means no expiry. */
export function checkTtl(seconds: number, field = 'ttl_seconds', allowZero = true): number {
  if (!Number.isSafeInteger(seconds) || seconds < (allowZero ? 0 : 1) || seconds > MAX_TTL_SECONDS) {
    throw invalidField(field, `expected ${allowZero ? 0 : 1} to ${MAX_TTL_SECONDS} seconds`);
  }
  return seconds * 1000;
}

/** Metadata: empty, or JSON text of at most 64 KiB. */
export function checkMetadata(value: string, field = 'metadata'): string {
  if (value === '') return value;
  if (!value.isWellFormed() || utf8Length(value) > MAX_METADATA_BYTES) {
    throw invalidField(field, `expected JSON of at most ${MAX_METADATA_BYTES} bytes`);
  }
  try {
    JSON.parse(value);
  } catch {
    throw invalidField(field, 'expected valid JSON');
  }
  if (jsonDepth(value) > MAX_METADATA_DEPTH)
    throw invalidField(field, `expected JSON nested at most ${MAX_METADATA_DEPTH} levels deep`);
  return value;
}

/** How deep arrays and objects nest in valid JSON text (brackets outside strings). */
function jsonDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) deepest = Math.max(deepest, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

export function checkExpectedVersion(value: bigint | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw invalidField('expected_version', `expected 0 to ${Number.MAX_SAFE_INTEGER}`);
  }
  return Number(value);
}

export function checkPageSize(value: number): number {
  if (value === 0) return DEFAULT_PAGE_SIZE;
  if (!Number.isSafeInteger(value) || value < 1 || value > MAX_PAGE_SIZE) {
    throw invalidField('page_size', `expected 0 to ${MAX_PAGE_SIZE}`);
  }
  return value;
}

export function checkBatchSize(count: number, limits: ValidationLimits, field: string): void {
  if (count < 1 || count > limits.maxBatchItems) {
    throw invalidField(field, `expected 1 to ${limits.maxBatchItems} items`);
  }
}

/** A page token is the last key of the previous page, base64url-encoded. */
export function encodePageToken(lastKey: string): string {
  return Buffer.from(lastKey, 'utf8').toString('base64url');
}

/** Decodes a page token; undefined for the first page. */
export function decodePageToken(token: string): string | undefined {
  if (token === '') return undefined;
  if (token.length > MAX_PAGE_TOKEN_LENGTH || !/^[A-Za-z0-9_-]+$/.test(token)) {
    throw invalidField('page_token', 'expected a token returned by List');
  }
  const bytes = Buffer.from(token, 'base64url');
  const key = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  // Reject tokens that do not re-encode exactly: not produced by encodePageToken.
  if (encodePageToken(key) !== token) throw invalidField('page_token', 'expected a token returned by List');
  return checkKey(key, 'page_token');
}
