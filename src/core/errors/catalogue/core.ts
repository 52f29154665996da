import type { ErrorDefinition } from '../definition.ts';

/** Errors raised by the core modules and the main HTTP API. */
export const CORE_ERRORS = [
  {
    code: 'GW_ERR_INTERNAL',
    kind: 'INTERNAL',
    title: 'Internal error',
    description:
      'An unexpected failure. The response carries an `errorId`; the server log holds the cause under the same id.',
  },
  {
    code: 'GW_ERR_REQUEST_INVALID',
    kind: 'INVALID_ARGUMENT',
    title: 'Invalid request',
    description:
      'The request body, query or parameters failed validation; `details.errors` lists each field and what was expected.',
  },
  {
    code: 'GW_ERR_REQUEST_TOO_LARGE',
    kind: 'RESOURCE_EXHAUSTED',
    title: 'Request body too large',
    description: 'The body exceeds the configured limit for this endpoint.',
    httpStatus: 413,
  },
  {
    code: 'GW_ERR_REQUEST_UNSUPPORTED_MEDIA',
    kind: 'INVALID_ARGUMENT',
    title: 'Unsupported media type',
    description: 'The request `Content-Type` is not accepted by this endpoint.',
    httpStatus: 415,
  },
  {
    code: 'GW_ERR_REQUEST_NOT_ACCEPTABLE',
    kind: 'INVALID_ARGUMENT',
    title: 'Not acceptable',
    description: 'None of the media types in `Accept` can be produced.',
    httpStatus: 406,
  },
  {
    code: 'GW_ERR_ROUTE_NOT_FOUND',
    kind: 'NOT_FOUND',
    title: 'Not found',
    description: 'No endpoint is registered for this method and path.',
  },
  {
    code: 'GW_ERR_METHOD_NOT_ALLOWED',
    kind: 'INVALID_ARGUMENT',
    title: 'Method not allowed',
    description: 'The path exists but does not accept this method.',
    httpStatus: 405,
  },
  {
    code: 'GW_ERR_RATE_LIMITED',
    kind: 'RESOURCE_EXHAUSTED',
    title: 'Too many requests',
    description: 'A rate limit was exceeded; `Retry-After` says when to try again.',
  },
  {
    code: 'GW_ERR_OVERLOADED',
    kind: 'RESOURCE_EXHAUSTED',
    title: 'Server overloaded',
    description:
      'Too many requests are in flight, or (kv) the audit queue is full; the request was shed before any work was done.',
    httpStatus: 503,
  },
  {
    code: 'GW_ERR_SHUTTING_DOWN',
    kind: 'UNAVAILABLE',
    title: 'Server shutting down',
    description: 'The server is draining and accepts no new work; retry against another replica.',
  },
  {
    code: 'GW_ERR_NOT_READY',
    kind: 'UNAVAILABLE',
    title: 'Dependency unavailable',
    description:
      'A dependency (database, cache, uplink) is down; the request fails fast and service resumes when it returns.',
  },
  {
    code: 'GW_ERR_CONFIG_INVALID',
    kind: 'INVALID_ARGUMENT',
    title: 'Invalid configuration',
    description:
      'A configuration document failed validation; every problem is listed with its key path, the bad value and what was expected.',
  },
  {
    code: 'GW_ERR_STORAGE_UNAVAILABLE',
    kind: 'UNAVAILABLE',
    title: 'Database unavailable',
    description: 'The database could not be reached or timed out.',
  },
  {
    code: 'GW_ERR_STORAGE_CONFLICT',
    kind: 'ALREADY_EXISTS',
    title: 'Already exists',
    description: 'A record with the same unique key already exists.',
  },
  {
    code: 'GW_ERR_STORAGE_CORRUPT',
    kind: 'DATA_LOSS',
    title: 'Data folder corrupt',
    description: 'The data folder or database file cannot be read; restore it from backup or move it away.',
  },
  {
    code: 'GW_ERR_STORAGE_MIGRATION_UNKNOWN',
    kind: 'FAILED_PRECONDITION',
    title: 'Database is newer than this build',
    description:
      'The database records a migration this build does not know (a downgrade); run the newer version or restore a matching backup.',
  },
  {
    code: 'GW_ERR_STORAGE_MIGRATION_FAILED',
    kind: 'INTERNAL',
    title: 'Migration failed',
    description:
      'A schema migration failed and was rolled back; `details` names the module and migration id.',
  },
  {
    code: 'GW_ERR_CACHE_UNAVAILABLE',
    kind: 'UNAVAILABLE',
    title: 'Cache unavailable',
    description: 'The shared cache (Redis) could not be reached.',
  },
  {
    code: 'GW_ERR_AUTH_REQUIRED',
    kind: 'UNAUTHENTICATED',
    title: 'Authentication required',
    description: 'No credentials were presented. Send `Authorization: Bearer <token>` or an API key.',
  },
  {
    code: 'GW_ERR_AUTH_INVALID_CREDENTIALS',
    kind: 'UNAUTHENTICATED',
    title: 'Invalid credentials',
    description: 'The user name or password is wrong. The response does not say which.',
  },
  {
    code: 'GW_ERR_AUTH_LOCKED',
    kind: 'UNAUTHENTICATED',
    title: 'Account temporarily locked',
    description:
      'Too many failed logins of this account from this client address (its lock or backoff), or from all addresses (the short account-wide backoff); `Retry-After` says when to try again. Other addresses are not locked out; `gatehouse users unlock` clears it.',
  },
  {
    code: 'GW_ERR_AUTH_TOKEN_INVALID',
    kind: 'UNAUTHENTICATED',
    title: 'Invalid token',
    description:
      'The token is malformed, forged, signed with a disallowed algorithm or for another issuer or audience.',
  },
  {
    code: 'GW_ERR_AUTH_TOKEN_EXPIRED',
    kind: 'UNAUTHENTICATED',
    title: 'Token expired',
    description: 'The token is expired or not yet valid; refresh it or log in again.',
  },
  {
    code: 'GW_ERR_AUTH_TOKEN_REVOKED',
    kind: 'UNAUTHENTICATED',
    title: 'Token revoked',
    description:
      'The refresh token was revoked, already used (its family is revoked) or belongs to a logged-out session.',
  },
  {
    code: 'GW_ERR_AUTH_KEY_INVALID',
    kind: 'UNAUTHENTICATED',
    title: 'Invalid API key',
    description: 'The API key is unknown, revoked or expired.',
  },
  {
    code: 'GW_ERR_AUTH_CERT_INVALID',
    kind: 'UNAUTHENTICATED',
    title: 'Client certificate not accepted',
    description: 'The client certificate is missing, untrusted, expired or maps to no principal.',
  },
  {
    code: 'GW_ERR_AUTH_JWKS_UNAVAILABLE',
    kind: 'UNAVAILABLE',
    title: 'Key set unavailable',
    description: 'The configured JWKS URL could not be fetched to validate an external token.',
  },
  {
    code: 'GW_ERR_AUTH_IP_NOT_ALLOWED',
    kind: 'PERMISSION_DENIED',
    title: 'Address not allowed',
    description: 'The client address is outside the allow-list configured for this role or API key.',
  },
  {
    code: 'GW_ERR_RBAC_DENIED',
    kind: 'PERMISSION_DENIED',
    title: 'Permission denied',
    description: 'The principal has no role binding that grants this action on this resource.',
  },
  {
    code: 'GW_ERR_USER_NOT_FOUND',
    kind: 'NOT_FOUND',
    title: 'User not found',
    description: 'No user with this name or id exists.',
  },
  {
    code: 'GW_ERR_USER_EXISTS',
    kind: 'ALREADY_EXISTS',
    title: 'User exists',
    description: 'A user with this name already exists.',
  },
  {
    code: 'GW_ERR_USER_LAST_ADMIN',
    kind: 'FAILED_PRECONDITION',
    title: 'Last administrator',
    description:
      'The change would leave no enabled user with the admin role in every namespace; grant it to another user first.',
    httpStatus: 409,
  },
  {
    code: 'GW_ERR_USER_PASSWORD_WEAK',
    kind: 'INVALID_ARGUMENT',
    title: 'Password too weak',
    description: 'Passwords need at least 12 characters.',
  },
  {
    code: 'GW_ERR_KEY_NOT_FOUND',
    kind: 'NOT_FOUND',
    title: 'API key not found',
    description: 'No API key with this id exists.',
  },
  {
    code: 'GW_ERR_AUDIT_CHAIN_BROKEN',
    kind: 'DATA_LOSS',
    title: 'Audit chain broken',
    description:
      'A record of the audit log was changed, inserted or removed; `details` names the first bad sequence number.',
  },
  {
    code: 'GW_ERR_TLS_INVALID',
    kind: 'INVALID_ARGUMENT',
    title: 'Invalid TLS material',
    description:
      'A certificate or key file cannot be read or parsed, or the key does not match the certificate.',
  },
  {
    code: 'GW_ERR_CLI_USAGE',
    kind: 'INVALID_ARGUMENT',
    title: 'Invalid command line',
    description: 'A command, flag or argument is unknown or malformed; run `gatehouse help`.',
  },
  {
    code: 'GW_ERR_CLI_NO_SERVER',
    kind: 'UNAVAILABLE',
    title: 'Server unreachable',
    description:
      'The CLI could not reach the server named by `--server`, `GATEHOUSE_URL` or the saved login, or (the `kv` commands) the kv listener named by `--kv-url` or `GATEHOUSE_KV_URL`; the message names the URL and the reason.',
  },
] as const satisfies readonly ErrorDefinition[];
