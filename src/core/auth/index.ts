/**
 * core/auth: passwords, JWT access and refresh tokens, API keys, external JWKS and mTLS principals.
 * @module
 */
/** The Authenticator port every transport calls, and what it takes. */
export type { Authenticator, Credentials, PeerCertificateInfo } from './port.ts';
/** The kind of credential a request carries (`apikey`, `token`, `certificate`), for metrics and audit. */
export { credentialMethod } from './authenticator.ts';
/** The identity service (Authenticator plus user, key, token and binding management). */
export { type AuthService, type AuthServiceOptions, createAuthService } from './service.ts';
/** What login and refresh answer. */
export type { TokenPair } from './sessions.ts';
/** Users as the API shows them. */
export type { CreateUserInput, UpdateUserInput, User } from './users.ts';
/** Clears a user's failed logins and locks on the database itself (`gatehouse users unlock`). */
export { type UnlockResult, unlockUser } from './users.ts';
/** API keys: the `gh_` prefix transports use to recognise them, and their listed form. */
export { API_KEY_PREFIX, type ApiKey, type CreateApiKeyInput, looksLikeApiKey } from './api-keys.ts';
/** The `auth` configuration section. */
export {
  type AuthConfig,
  authConfigSchema,
  EXTERNAL_ALGORITHMS,
  type JwksConfig,
  type MtlsRule,
} from './config.ts';
/** IPv4/IPv6 CIDR allow-list matching (IPv4-mapped IPv6 aware); the edge firewall reuses it. */
export { addressGroup, type CidrMatcher, createCidrMatcher, ipToBigInt } from './cidr.ts';
/** scrypt password hashing with self-describing parameters. */
export { hashPassword, needsRehash, randomPassword, type ScryptParams, verifyPassword } from './password.ts';
/** Maps client certificates to principals with the configured rules (fails closed). */
export { createCertificateMapper } from './mtls.ts';
/** HTTP routes of the identity API on the main server. */
export { type HttpServer as AuthRouteHost, registerAuthRoutes } from './routes.ts';
