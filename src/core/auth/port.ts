import type { Principal } from '#core/rbac';

/** What a client certificate says about its holder, taken from a verified TLS peer. */
export interface PeerCertificateInfo {
  /** RFC 4514 subject, e.g. `CN=billing,O=Example`. */
  readonly subject: string;
  /** SAN entries as `DNS:…`, `URI:…`, `email:…`, `IP Address:…`. */
  readonly subjectAltNames: readonly string[];
  /** SHA-256 fingerprint, colon-separated hex as Node reports it. */
  readonly fingerprint256: string;
  readonly issuer?: string;
  readonly validTo?: string;
}

/** The credentials a transport extracted from one request. */
export interface Credentials {
  /** `Authorization: Bearer …`: a Gatehouse access token or an external JWT. */
  readonly bearer?: string;
  /** An API key (`X-Api-Key`, or a bearer that starts with the key prefix). */
  readonly apiKey?: string;
  /** A client certificate the TLS layer already verified against the trusted CAs. */
  readonly certificate?: PeerCertificateInfo;
  readonly clientIp?: string;
}

/**
 * Turns credentials into a Principal or throws a GatewayError (GW_ERR_AUTH_*). With no
 * credentials at all it throws GW_ERR_AUTH_REQUIRED. Every door authenticates through this.
 */
export interface Authenticator {
  authenticate(credentials: Credentials): Promise<Principal>;
}
