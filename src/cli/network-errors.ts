/** What people read for the system error codes of a connection that failed (HTTP API and kv). */
const NETWORK_REASONS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by the server',
  EPIPE: 'connection reset by the server',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ERR_HTTP2_ERROR: 'the server does not speak HTTP/2, so it is not a kv listener',
  ERR_SSL_WRONG_VERSION_NUMBER: 'TLS handshake failed: the port does not speak TLS',
  ERR_TLS_CERT_ALTNAME_INVALID: 'the server certificate does not name this host',
  CERT_HAS_EXPIRED: 'the server certificate has expired',
  CERT_NOT_YET_VALID: 'the server certificate is not valid yet',
};

/** Certificate chains Node cannot verify: the usual cause is a CA the client was not given. */
const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);

/**
 * Why a connection failed, for people, from its system or OpenSSL code, or undefined for a code
 * without a known reason; `trustHint` says how this client is given the CA (`--ca`, …).
 */
export function networkReason(code: string, trustHint: string): string | undefined {
  if (UNTRUSTED.has(code)) return `the server certificate is not trusted: ${trustHint}`;
  return NETWORK_REASONS[code] ?? (/^ERR_(SSL|TLS)_/.test(code) ? 'TLS handshake failed' : undefined);
}
