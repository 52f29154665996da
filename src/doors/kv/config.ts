import {
  array,
  boolean,
  duration,
  type Infer,
  INVALID,
  integer,
  object,
  oneOf,
  optional,
  record,
  size,
  string,
  withProblems,
} from '#core/config';

/** A DNS name (optionally `*.`-prefixed) or an IPv4/IPv6 address, for a certificate's SANs. */
const HOST =
  /^(?:(?:\*\.)?(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?|\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*)$/;

const DRIVER_TYPES = ['sqlite', 'redis', 'postgres', 'nats', 'memory'] as const;

const driverSchema = object(
  {
    type: oneOf(DRIVER_TYPES, 'Backend of this driver'),
    url: optional(
      string({
        description: 'Connection URL for redis ("redis://…"), postgres ("postgres://…") or nats ("nats://…")',
        secret: true,
      }),
    ),
    path: optional(string('SQLite file; relative paths are inside the data folder (default "kv.sqlite")')),
    timeout: duration('Deadline of one backend call; a slower backend answers UNAVAILABLE', {
      default: '2s',
      min: 10,
      max: 60_000,
    }),
    poolSize: integer('Connections in the PostgreSQL pool', { default: 20, min: 1, max: 1000 }),
    sweepInterval: duration('How often expired entries are deleted (sqlite, postgres, nats); "0s" disables', {
      default: '30s',
    }),
    keyPrefix: optional(string('Prefix of every Redis key, or the NATS bucket name, of this driver')),
  },
  'One backend the kv door can route namespaces to',
);

const limitsSchema = object(
  {
    requestsPerSecond: integer(
      'Token bucket refill rate per authenticated client (a batch costs one per key or item)',
      {
        default: 1000,
        min: 1,
      },
    ),
    burst: integer('Token bucket capacity per client', { default: 2000, min: 1 }),
    connectionsPerIp: integer('Concurrent connections per client address', { default: 100, min: 1 }),
    authenticationsPerIp: integer(
      'Credential verifications per second per client address (reused authentications do not count); bounds guessing and the work invalid credentials cause',
      { default: 100, min: 1 },
    ),
    namespaceBandwidth: size('Request plus response bytes per second per namespace', {
      default: '100MB',
      min: 1024,
    }),
    maxInFlight: integer('Calls processed at once by this replica; beyond it calls get RESOURCE_EXHAUSTED', {
      default: 1024,
      min: 1,
    }),
    maxValueSize: size('Largest value accepted, and the most bytes of values in one BatchSet', {
      default: '10MiB',
      min: 1,
      max: 64 * 1024 * 1024,
    }),
    bufferedBytesPerIp: size(
      'Request bytes one client (IPv4 address or IPv6 /64) may have held at once: header lists and bodies of streams not yet closed, before and after authentication; beyond it the stream is reset with ENHANCE_YOUR_CALM, which gRPC clients report as RESOURCE_EXHAUSTED, and the connection must answer a PING within 2 s or is closed. Never below one largest message',
      { default: '64MiB', min: 1024 },
    ),
    bufferedBytes: size(
      'Request bytes this replica holds at once for all clients; beyond it streams are reset as above. Never below one largest message',
      { default: '512MiB', min: 1024 },
    ),
    maxBatchItems: integer('Most keys in one BatchGet or BatchSet', { default: 1000, min: 1, max: 100_000 }),
  },
  { description: 'Rate limits and shedding of the kv door', dynamic: true },
);

const auditSchema = object(
  {
    allowed: oneOf(
      ['every', 'summary'] as const,
      'Audit every allowed call, or the first one and then a count per interval',
      {
        default: 'every',
      },
    ),
    summaryInterval: duration('Interval of the allowed-call counts in "summary" mode', {
      default: '60s',
      min: 1000,
    }),
    gatherWindow: duration(
      'Allowed-call events of "every" mode wait at most this long, so that several share one audit-log transaction; 0 records each at once',
      { default: '10ms', min: 0, max: 1000 },
    ),
    maxPending: integer('Audit events queued by the door at most; beyond it calls are shed', {
      default: 10_000,
      min: 1,
    }),
  },
  {
    description: 'Audit of kv authorization decisions (denials are always recorded one by one)',
    dynamic: true,
  },
);

const kvFields = object(
  {
    enabled: boolean('Run the kv door', { default: true }),
    listen: string('Address of the gRPC/Connect listener as HOST:PORT', {
      default: '127.0.0.1:7443',
      pattern: /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/,
      format: 'HOST:PORT such as "127.0.0.1:7443"',
    }),
    tls: object(
      {
        certFile: optional(
          string('Server certificate (PEM), set with keyFile; default: issued from the development CA'),
        ),
        keyFile: optional(string('Private key of the server certificate (PEM), set with certFile')),
        clientCaFile: optional(
          string('CAs that client certificates must chain to; default: the development CA'),
        ),
        hosts: array(
          string('A DNS name (a leading "*." for a wildcard) or an IP address', {
            pattern: HOST,
            format: 'a DNS name such as "kv.gatehouse.svc" or an IP address',
          }),
          'More names the development server certificate covers besides localhost, 127.0.0.1 and ::1 (the names clients dial, such as a Kubernetes Service name); not with certFile',
          { default: [], maxItems: 100 },
        ),
        handshakeTimeout: duration(
          'Connections that have not finished the TLS handshake by then are closed',
          {
            default: '10s',
            min: 10,
          },
        ),
        idleTimeout: duration('Connections without traffic for this long are closed', {
          default: '120s',
          min: 10,
        }),
      },
      'TLS of the kv listener: TLS 1.3 only, ALPN h2; files are watched and hot-reloaded',
    ),
    drivers: record(driverSchema, 'Named backends', {
      default: { embedded: { type: 'sqlite' } },
      keyPattern: /^[a-z][a-z0-9-]{0,62}$/,
    }),
    namespaces: record(
      string('Name of the driver (a key of kv.drivers) that holds this namespace', { minLength: 1 }),
      'Namespace to driver routing; unlisted namespaces use kv.defaultDriver',
      { default: {}, keyPattern: /^[a-z][a-z0-9-]{0,61}[a-z0-9]$/ },
    ),
    defaultDriver: string('Driver of namespaces not listed in kv.namespaces', {
      default: 'embedded',
      minLength: 1,
    }),
    authCacheTtl: duration(
      'How long a successful authentication of the same credentials from the same address is reused (the revocation delay accepted); "0s" verifies every call',
      { default: '1s', max: 30_000 },
    ),
    limits: limitsSchema,
    audit: auditSchema,
  },
  'The kv door: a gRPC key-value API routed to backend drivers',
);

const URL_SCHEMES = {
  redis: { pattern: /^rediss?:\/\//, example: 'redis://host:6379 or rediss://…' },
  postgres: { pattern: /^postgres(?:ql)?:\/\//, example: 'postgres://user@host:5432/db' },
  nats: { pattern: /^(?:nats|tls):\/\//, example: 'nats://host:4222 or tls://…' },
} as const;

/**
 * The rules across keys of the section, each as an issue at its key (relative to `kv`): a
 * backend driver needs a URL of its own scheme, and every driver a namespace or the default
 * names must exist. All are reported at once.
 */
function kvConfigIssues(
  config: Infer<typeof kvFields>,
): { readonly path: string; readonly value: unknown; readonly expected: string }[] {
  const issues: { path: string; value: unknown; expected: string }[] = [];
  for (const [name, d] of Object.entries(config.drivers)) {
    if (d.type !== 'redis' && d.type !== 'postgres' && d.type !== 'nats') continue;
    const scheme = URL_SCHEMES[d.type];
    if (d.url === undefined || d.url === '')
      issues.push({
        path: `drivers.${name}.url`,
        value: d.url,
        expected: `a ${d.type} URL such as ${scheme.example}`,
      });
    else if (!scheme.pattern.test(d.url))
      // The value may hold a password: only its scheme is shown.
      issues.push({
        path: `drivers.${name}.url`,
        value: `${d.url.split('://')[0] ?? ''}://…`,
        expected: `a ${d.type} URL such as ${scheme.example}`,
      });
  }
  const drivers = Object.keys(config.drivers);
  const named = `the name of a driver of kv.drivers (${drivers.map((d) => `"${d}"`).join(', ') || 'none'})`;
  if (!Object.hasOwn(config.drivers, config.defaultDriver))
    issues.push({ path: 'defaultDriver', value: config.defaultDriver, expected: named });
  for (const [ns, driver] of Object.entries(config.namespaces))
    if (!Object.hasOwn(config.drivers, driver))
      issues.push({ path: `namespaces.${ns}`, value: driver, expected: named });
  return issues;
}

/** The `kv` section of gatehouse.yaml, with the rules across its keys (kvConfigIssues). */
export const kvConfigSchema = withProblems(kvFields, (_raw, parsed) =>
  parsed === INVALID ? [] : kvConfigIssues(parsed).map((i) => ({ ...i, field: i.path })),
);

/** The parsed `kv` section. */
export type KvConfig = Infer<typeof kvConfigSchema>;
export type KvDriverConfig = KvConfig['drivers'][string];
export type KvLimits = KvConfig['limits'];
