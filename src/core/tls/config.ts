import { boolean, type Infer, object, oneOf, optional, string } from '#core/config';

/** The TLS settings of a listener (static: changing files is picked up by watching, not by config reload). */
export const tlsConfigSchema = object(
  {
    certFile: optional(
      string('PEM certificate file (leaf first, then intermediates); watched and hot-reloaded'),
    ),
    keyFile: optional(
      string({ description: 'PEM private key file of the certificate; watched and hot-reloaded' }),
    ),
    caFile: optional(string('PEM bundle of the CAs that client certificates must chain to (enables mTLS)')),
    minVersion: oneOf(['TLSv1.2', 'TLSv1.3'] as const, 'Lowest TLS version accepted', { default: 'TLSv1.3' }),
    ciphers: optional(string('OpenSSL cipher list for TLS 1.2; TLS 1.3 suites are fixed by the protocol')),
    requireClientCert: boolean('Refuse handshakes without a client certificate that chains to caFile', {
      default: false,
    }),
  },
  'TLS for a listener; without certFile and keyFile the embedded development CA issues a certificate',
);

/** Parsed TLS settings. */
export type TlsConfig = Infer<typeof tlsConfigSchema>;
