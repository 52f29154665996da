/**
 * core/tls: the development CA, certificate issuance, hot-reloaded TLS contexts and peer
 * certificate conversion.
 * @module
 */
/** Development CA and certificates issued from it. */
export {
  type CertificateAuthority,
  ensureDevelopmentCa,
  ensureServerCertificate,
  type IssuedCertificate,
  type IssueOptions,
  issueCertificate,
  type ServerCertificateFiles,
} from './ca.ts';
/** TLS listener settings schema. */
export { type TlsConfig, tlsConfigSchema } from './config.ts';
/** A SecureContext that follows its certificate files. */
export {
  createTlsContextProvider,
  type TlsContextProvider,
  type TlsContextProviderOptions,
  type TlsMinVersion,
  type TlsReloadOutcome,
} from './context-provider.ts';
/** Node peer certificates as PeerCertificateInfo. */
export { formatDistinguishedName, peerCertificateInfo, splitSubjectAltNames } from './peer.ts';
