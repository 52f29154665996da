import { isIP } from 'node:net';
import {
  array,
  boolean,
  duration,
  type Infer,
  integer,
  number,
  object,
  record,
  oneOf,
  optional,
  size,
  string,
} from '#core/config';

/** A `HOST:PORT` pair; IPv6 hosts are bracketed (`[::1]:7070`). */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** Parses `HOST:PORT` (`127.0.0.1:7070`, `[::1]:0`, `localhost:8080`); undefined when malformed. */
export function parseListen(text: string): ListenAddress | undefined {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text.trim());
  if (match === null) return undefined;
  const port = Number(match[3]);
  if (port > 65_535) return undefined;
  const v6 = match[1];
  if (v6 !== undefined) return isIP(v6) === 6 ? { host: v6, port } : undefined;
  const host = match[2] ?? '';
  if (/^[\d.]+$/.test(host) && isIP(host) !== 4) return undefined;
  return { host, port };
}

/** Parses an IPv4 or IPv6 CIDR (`10.0.0.0/8`, `::1/128`) or a bare address; undefined when malformed. */
export function parseCidr(
  text: string,
): { readonly address: string; readonly prefix: number; readonly family: 4 | 6 } | undefined {
  const [address = '', prefixText, extra] = text.trim().split('/');
  if (extra !== undefined) return undefined;
  const family = isIP(address);
  if (family !== 4 && family !== 6) return undefined;
  const max = family === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (prefix > max) return undefined;
  return { address, prefix, family };
}

const listen = string(
  {
    description: 'Address of the main HTTP listener as HOST:PORT; IPv6 in brackets, e.g. "[::1]:7070"',
    env: 'GATEHOUSE_LISTEN',
  },
  {
    default: '127.0.0.1:7070',
    format: 'HOST:PORT such as "127.0.0.1:7070" or "[::1]:0"',
    check: (v) => parseListen(v) !== undefined,
  },
);

const cidr = string('An IPv4 or IPv6 address or CIDR, e.g. "10.0.0.0/8"', {
  format: 'an IP address or CIDR such as "10.0.0.0/8" or "fd00::/8"',
  check: (v) => parseCidr(v) !== undefined,
});

const tls = object(
  {
    certFile: optional(
      string('PEM certificate chain of the main listener (leaf first); watched and hot-reloaded', {
        minLength: 1,
      }),
    ),
    keyFile: optional(
      string('PEM private key of the certificate; watched and hot-reloaded', { minLength: 1 }),
    ),
    minVersion: oneOf(['TLSv1.2', 'TLSv1.3'] as const, 'Lowest TLS version accepted (1.3 by default)', {
      default: 'TLSv1.3',
    }),
    requireTls: boolean('Refuse plain HTTP: the server does not start unless certFile and keyFile are set', {
      default: false,
    }),
    clientCa: optional(
      string('PEM bundle of CAs that client certificates must chain to (enables mTLS login)'),
    ),
    requestClientCert: boolean(
      'Ask clients for a certificate during the handshake; a verified one authenticates the request',
      { default: false },
    ),
  },
  'TLS of the main listener: HTTP/2 through ALPN with HTTP/1.1 fallback; with certFile and keyFile the port speaks only TLS',
);

/** The `server` section: the main HTTP listener of the core API and the HTTP doors. */
export const httpConfigSchema = object(
  {
    listen,
    tls,
    trustedProxies: array(cidr, 'Proxies whose X-Forwarded-For is believed (addresses or CIDRs)', {
      default: [],
    }),
    roleAllowedCidrs: record(
      array(cidr, 'Addresses or CIDRs the role may be used from'),
      {
        description:
          'Per-role allow-lists, e.g. `admin: ["10.0.0.0/8"]`: a role binding counts only for requests from these ranges (other bindings of the same principal still apply)',
        dynamic: true,
      },
      { default: {}, keyPattern: /^(admin|publisher|consumer|auditor|operator|reader)$/ },
    ),
    metrics: object(
      {
        allowedCidrs: array(
          cidr,
          'Addresses or CIDRs that may scrape /metrics without credentials (loopback by default; [] for none)',
          { default: ['127.0.0.0/8', '::1'] },
        ),
        token: optional(
          string(
            {
              description:
                'Bearer token a scraper may send instead (Prometheus `authorization` / `bearer_token_file`); at least 32 characters',
              secret: true,
            },
            { minLength: 32 },
          ),
        ),
      },
      {
        description:
          'Who may read /metrics: these addresses, the scrape token, or any signed-in principal with health:read',
        dynamic: true,
      },
    ),
    bodyLimit: size('Largest request body accepted unless a route raises it', { default: '1MiB', min: 1 }),
    cors: object(
      {
        origins: array(
          string('An origin such as "https://console.example.test"', {
            pattern: /^https?:\/\/[^/\s]+$/,
            format: 'an origin such as "https://console.example.test"',
          }),
          'Origins allowed to call the API from a browser; empty turns CORS off',
          {
            default: [],
          },
        ),
      },
      'Cross-origin requests; off by default',
    ),
    rateLimit: object(
      {
        rate: number('Requests per second per principal (per client address when anonymous); 0 disables', {
          default: 50,
          min: 0,
        }),
        burst: integer('Requests allowed in a burst above the rate', { default: 100, min: 1 }),
      },
      { description: 'General API rate limit', dynamic: true },
    ),
    authFailureAudit: object(
      {
        perAddress: integer(
          'Refused authentications audited one by one per client address (an IPv6 /64) per minute',
          {
            default: 10,
            min: 1,
            max: 10_000,
          },
        ),
        perMinute: integer('Refused authentications audited one by one per minute in all', {
          default: 300,
          min: 1,
          max: 100_000,
        }),
      },
      {
        description:
          'Audit of refused credentials (bad API keys and tokens) on ordinary routes: beyond these limits they are counted and written as one auth.failure.suppressed summary per minute',
        dynamic: true,
      },
    ),
    maxInFlight: integer('Requests processed at once before new ones are shed with 503', {
      default: 1024,
      min: 1,
    }),
    shutdownTimeout: duration('How long in-flight requests may finish after a stop signal', {
      default: '30s',
    }),
    requestTimeout: duration('Longest time to receive a whole request; 0 disables', { default: '5m' }),
    headersTimeout: duration('Longest time to receive the request headers', { default: '30s', min: 1 }),
    keepAliveTimeout: duration('Idle time before a keep-alive connection is closed', {
      default: '65s',
      min: 1,
    }),
  },
  'Main HTTP listener',
);

/** Parsed `server` section. */
export type HttpConfig = Infer<typeof httpConfigSchema>;

/**
 * Checks what the schema cannot: that addresses parse and that the TLS settings agree.
 * Throws RangeError at validate time (a configuration mistake, not a request error).
 */
export function validateHttpConfig(config: HttpConfig): ListenAddress {
  const address = parseListen(config.listen);
  if (address === undefined) {
    throw new RangeError(
      `server.listen: "${config.listen}" is not valid; expected HOST:PORT such as "127.0.0.1:7070"`,
    );
  }
  config.trustedProxies.forEach((p, i) => {
    if (parseCidr(p) === undefined) {
      throw new RangeError(
        `server.trustedProxies[${i}]: "${p}" is not valid; expected an IP address or CIDR`,
      );
    }
  });
  const { certFile, keyFile } = config.tls;
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new RangeError('server.tls: certFile and keyFile must be set together');
  }
  if (config.tls.requireTls && certFile === undefined) {
    throw new RangeError(
      'server.tls.requireTls: plain HTTP is refused but server.tls.certFile and keyFile are not set',
    );
  }
  if (config.tls.requestClientCert && (certFile === undefined || config.tls.clientCa === undefined)) {
    throw new RangeError(
      'server.tls.requestClientCert: client certificates need TLS and server.tls.clientCa',
    );
  }
  return address;
}
