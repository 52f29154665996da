import type { ErrorDefinition } from '../definition.ts';

/** Errors of the artifacts area; codes start with GW_ERR_ARTIFACTS_. */
export const ARTIFACTS_ERRORS = [
  {
    code: 'GW_ERR_ARTIFACTS_NOT_FOUND',
    kind: 'NOT_FOUND',
    title: 'Artifact not found',
    description: 'No artifact with this id exists, or the caller may not see it.',
  },
  {
    code: 'GW_ERR_ARTIFACTS_ALREADY_EXISTS',
    kind: 'ALREADY_EXISTS',
    title: 'Artifact version already exists',
    description:
      'The repository already holds an artifact with this name and version; versions are immutable.',
  },
  {
    code: 'GW_ERR_ARTIFACTS_PRECONDITION_FAILED',
    kind: 'FAILED_PRECONDITION',
    title: 'Precondition failed',
    description:
      "A download's `If-Match` names no current representation of the artifact (strong comparison), or a ticket download's `If-None-Match` names it (RFC 9110 §13.1.1, §13.1.2).",
  },
  {
    code: 'GW_ERR_ARTIFACTS_UPLOAD_INVALID',
    kind: 'INVALID_ARGUMENT',
    title: 'Invalid upload',
    description:
      'The upload lacks a name, version or repository, names one that is not allowed, has a file name or media type that is not allowed (`details.field` names it), or its multipart body is malformed.',
  },
  {
    code: 'GW_ERR_ARTIFACTS_DIGEST_MISMATCH',
    kind: 'INVALID_ARGUMENT',
    title: 'Digest mismatch',
    description:
      'The SHA-256 of the received bytes differs from the `sha256` the client announced; nothing was stored.',
  },
  {
    code: 'GW_ERR_ARTIFACTS_SIZE_MISMATCH',
    kind: 'INVALID_ARGUMENT',
    title: 'Size mismatch',
    description:
      'The body ended before or after the announced `Content-Length` (a truncated or over-long upload); nothing was stored.',
  },
  {
    code: 'GW_ERR_ARTIFACTS_TOO_LARGE',
    kind: 'RESOURCE_EXHAUSTED',
    title: 'Artifact too large',
    description: 'The artifact exceeds the configured maximum artifact size.',
    httpStatus: 413,
  },
  {
    code: 'GW_ERR_ARTIFACTS_QUOTA_EXCEEDED',
    kind: 'RESOURCE_EXHAUSTED',
    title: 'Repository quota exceeded',
    description:
      'Storing the artifact would take the repository over its configured quota (`details` gives usage and limit), or the artifact already holds the most signatures it may (64; `details.limit`).',
    httpStatus: 507,
  },
  {
    code: 'GW_ERR_ARTIFACTS_NOT_APPROVED',
    kind: 'PERMISSION_DENIED',
    title: 'Artifact not approved',
    description:
      'The artifact is quarantined (not scanned yet) or blocked by policy; only callers allowed to download unapproved artifacts may fetch it.',
  },
  {
    code: 'GW_ERR_ARTIFACTS_RANGE_NOT_SATISFIABLE',
    kind: 'OUT_OF_RANGE',
    title: 'Range not satisfiable',
    description: 'The `Range` header does not describe bytes inside the artifact.',
  },
  {
    code: 'GW_ERR_ARTIFACTS_INTEGRITY',
    kind: 'DATA_LOSS',
    title: 'Stored artifact failed its integrity check',
    description:
      'The stored bytes failed authenticated decryption or no longer match their SHA-256 (tampering or corruption); the download was stopped.',
  },
  {
    code: 'GW_ERR_ARTIFACTS_KEY_UNAVAILABLE',
    kind: 'FAILED_PRECONDITION',
    title: 'Encryption key unavailable',
    description:
      'The master key that wrapped this blob is not configured, or the wrapped data key was destroyed.',
  },
  {
    code: 'GW_ERR_ARTIFACTS_BLOB_STORE',
    kind: 'UNAVAILABLE',
    title: 'Blob store unavailable',
    description: 'The blob store (filesystem or S3-compatible bucket) refused or failed an operation.',
  },
  {
    code: 'GW_ERR_ARTIFACTS_ARCHIVE_LIMIT',
    kind: 'RESOURCE_EXHAUSTED',
    title: 'Archive limit exceeded',
    description:
      'An archive exceeds the scanner limits on entries, expanded size, compression ratio or nesting depth (an archive bomb).',
    httpStatus: 422,
  },
  {
    code: 'GW_ERR_ARTIFACTS_ARCHIVE_INVALID',
    kind: 'INVALID_ARGUMENT',
    title: 'Invalid archive',
    description: 'An archive is malformed or has an entry whose name escapes the archive (path traversal).',
    httpStatus: 422,
  },
  {
    code: 'GW_ERR_ARTIFACTS_MANIFEST_INVALID',
    kind: 'INVALID_ARGUMENT',
    title: 'Invalid manifest',
    description:
      'A lockfile, manifest or SBOM inside the artifact could not be parsed; it is reported and skipped.',
    httpStatus: 422,
  },
  {
    code: 'GW_ERR_ARTIFACTS_SCAN_PENDING',
    kind: 'FAILED_PRECONDITION',
    title: 'Scan not finished',
    description: 'The artifact has no scan result yet; it stays quarantined until its scan completes.',
    httpStatus: 409,
  },
  {
    code: 'GW_ERR_ARTIFACTS_SCAN_QUEUE_FULL',
    kind: 'RESOURCE_EXHAUSTED',
    title: 'Scan queue full',
    description: 'The persistent scan queue reached its configured bound; retry later.',
    httpStatus: 503,
  },
  {
    code: 'GW_ERR_ARTIFACTS_SIGNATURE_INVALID',
    kind: 'INVALID_ARGUMENT',
    title: 'Invalid signature',
    description: 'A submitted signature bundle is malformed or does not verify against the artifact digest.',
  },
  {
    code: 'GW_ERR_ARTIFACTS_UNTRUSTED',
    kind: 'PERMISSION_DENIED',
    title: 'Artifact not trusted',
    description:
      'The trust policy requires a valid signature from a trusted key or certificate and none of the artifact signatures satisfies it; downloads fail closed.',
  },
  {
    code: 'GW_ERR_ARTIFACTS_SIGNING_UNAVAILABLE',
    kind: 'FAILED_PRECONDITION',
    title: 'Signing key not configured',
    description: 'The server was asked to sign but has no signing key configured.',
  },
  {
    code: 'GW_ERR_ARTIFACTS_OVERRIDE_INVALID',
    kind: 'INVALID_ARGUMENT',
    title: 'Invalid verdict override',
    description:
      'An override needs a verdict of `approved`, `blocked` or `policy` (end the override) and a non-empty reason.',
  },
] as const satisfies readonly ErrorDefinition[];
