import type { ErrorDefinition } from '../definition.ts';

/** Errors of the vulndb area; codes start with GW_ERR_VULNDB_. */
export const VULNDB_ERRORS = [
  {
    code: 'GW_ERR_VULNDB_IMPORT_INVALID',
    kind: 'INVALID_ARGUMENT',
    title: 'Invalid OSV export',
    description:
      'The file given to `vulndb import` is not a readable OSV ZIP archive or directory (bad central directory, CRC mismatch, oversized entry).',
  },
  {
    code: 'GW_ERR_VULNDB_ONLINE_FAILED',
    kind: 'UNAVAILABLE',
    title: 'OSV service failed',
    description:
      'The configured online OSV service could not be reached, timed out or answered something invalid.',
  },
  {
    code: 'GW_ERR_VULNDB_RATE_LIMITED',
    kind: 'RESOURCE_EXHAUSTED',
    title: 'OSV service rate limit',
    description:
      'The online OSV service answered 429 or 503; calls fail fast until its `Retry-After` time while cached answers are still used.',
  },
] as const satisfies readonly ErrorDefinition[];
