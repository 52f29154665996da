import type { ErrorDefinition } from '../definition.ts';

/** Errors of the registry area; codes start with GW_ERR_REGISTRY_. */
export const REGISTRY_ERRORS = [
  {
    code: 'GW_ERR_REGISTRY_NAME_INVALID',
    kind: 'INVALID_ARGUMENT',
    title: 'Invalid package name',
    description:
      'The package, project or file name in the path breaks its ecosystem naming rules (path traversal, separators, invalid characters or length).',
  },
  {
    code: 'GW_ERR_REGISTRY_NOT_FOUND',
    kind: 'NOT_FOUND',
    title: 'Package not found',
    description:
      'The package, version or file does not exist upstream, or no configured uplink serves this name.',
  },
  {
    code: 'GW_ERR_REGISTRY_UPLINK_UNAVAILABLE',
    kind: 'UNAVAILABLE',
    title: 'Uplink unavailable',
    description:
      'The upstream registry could not be reached, answered 5xx after retries, or its circuit breaker is open; cached metadata is served stale when there is some.',
    httpStatus: 502,
  },
  {
    code: 'GW_ERR_REGISTRY_UPLINK_TIMEOUT',
    kind: 'DEADLINE_EXCEEDED',
    title: 'Uplink timed out',
    description:
      'The upstream registry did not connect, answer or send its body within the configured timeouts.',
  },
  {
    code: 'GW_ERR_REGISTRY_UPSTREAM_INVALID',
    kind: 'UNAVAILABLE',
    title: 'Invalid upstream metadata',
    description:
      'The upstream answered metadata that does not parse (malformed JSON or HTML, wrong package); nothing was cached.',
    httpStatus: 502,
  },
  {
    code: 'GW_ERR_REGISTRY_UPSTREAM_TOO_LARGE',
    kind: 'RESOURCE_EXHAUSTED',
    title: 'Upstream metadata too large',
    description: 'The upstream metadata exceeds `registry.cache.maxMetadataSize`; the transfer was aborted.',
    httpStatus: 502,
  },
  {
    code: 'GW_ERR_REGISTRY_INTEGRITY_MISMATCH',
    kind: 'DATA_LOSS',
    title: 'Integrity mismatch',
    description:
      'A downloaded file does not match the digest its metadata publishes (sha512 for npm, sha256 for PyPI); it was not cached and the transfer was aborted.',
    httpStatus: 502,
  },
  {
    code: 'GW_ERR_REGISTRY_INTEGRITY_MISSING',
    kind: 'FAILED_PRECONDITION',
    title: 'No published digest',
    description:
      'The metadata publishes no digest for this file, so it cannot be verified and is not served.',
    httpStatus: 403,
  },
  {
    code: 'GW_ERR_REGISTRY_RANGE_INVALID',
    kind: 'OUT_OF_RANGE',
    title: 'Range not satisfiable',
    description: 'The `Range` header asks for bytes outside the file.',
  },
  {
    code: 'GW_ERR_REGISTRY_UNSUPPORTED',
    kind: 'UNIMPLEMENTED',
    title: 'Not supported by the proxy',
    description:
      'The endpoint (publish, audit) is not served by the Gatehouse registry proxy. npm publish and npm audit get it as 405 (with `Allow`), answered before the body is read, because npm retries every 5xx for over a minute.',
  },
  {
    code: 'GW_ERR_REGISTRY_UPLINK_RATE_LIMITED',
    kind: 'UNAVAILABLE',
    title: 'Uplink rate limited',
    description:
      'The upstream registry answered 429; the client is told when to retry (`Retry-After`) and cached metadata is served stale when there is some.',
    httpStatus: 429,
  },
  {
    code: 'GW_ERR_REGISTRY_UPLINK_AUTH',
    kind: 'UNAVAILABLE',
    title: 'Uplink authentication failed',
    description:
      'The upstream registry refused the configured credentials or the token it issued (401/403 after the token flow), or named a token realm Gatehouse will not send credentials to (plain HTTP for an HTTPS uplink, or an origin outside `tokenRealmOrigins`).',
    httpStatus: 502,
  },
  {
    code: 'GW_ERR_REGISTRY_XML_INVALID',
    kind: 'UNAVAILABLE',
    title: 'Unsafe or invalid upstream XML',
    description:
      'Upstream Maven metadata or a POM is not well-formed, or declares a DTD or entities (an XML bomb); it is refused and nothing is cached.',
    httpStatus: 502,
  },
  {
    code: 'GW_ERR_REGISTRY_DIGEST_INVALID',
    kind: 'INVALID_ARGUMENT',
    title: 'Invalid digest or reference',
    description: 'An OCI digest or tag in the path is malformed (algorithm, hex length, characters).',
  },
] as const satisfies readonly ErrorDefinition[];
