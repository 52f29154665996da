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
  size,
  string,
  withProblems,
} from '#core/config';
import { policyConfigSchema } from '#core/policy';
import { vulndbConfigSchema } from '#core/vulndb';
import { parseVerifierKey } from './go/tlog.ts';

const URL_PATTERN = /^https?:\/\/[^\s]+$/;

/** One upstream registry. */
/** The keys of one upstream registry, by name (the checksum database takes the common ones). */
const UPLINK_KEYS = {
  name: string(
    'Uplink name, used in metrics, audit events, overrides (`policy.registries.<name>`) and logs',
    {
      pattern: /^[a-z0-9][a-z0-9_-]{0,62}$/,
      format: 'a lower-case name such as "npm" or "internal"',
    },
  ),
  url: string('Base URL of the upstream (npm registry root, or PyPI simple index such as `…/simple/`)', {
    pattern: URL_PATTERN,
    format: 'an http(s) URL',
  }),
  jsonUrl: optional(
    string(
      'PyPI only: base URL of the JSON API (`<jsonUrl>/<project>/json`); defaults to the simple URL with `/simple` replaced by `/pypi`',
      {
        pattern: URL_PATTERN,
        format: 'an http(s) URL',
      },
    ),
  ),
  fileOrigins: array(
    string('An origin such as `https://files.example.test`', {
      pattern: /^https?:\/\/[^/\s]+$/,
      format: 'an http(s) origin',
    }),
    'Other origins the metadata may point files at (e.g. a PyPI file host); files elsewhere are refused',
    { default: [] },
  ),
  packages: array(
    string('Package name pattern'),
    'Packages served from this uplink (wildcards); the first matching uplink wins',
    {
      default: ['*'],
    },
  ),
  tokenRealmOrigins: array(
    string('An origin such as `https://auth.example.test`', {
      pattern: /^https?:\/\/[^/\s]+$/,
      format: 'an http(s) origin',
    }),
    "OCI only: origins of token services (`WWW-Authenticate: Bearer realm=…`) that may receive `username`/`password`, besides the uplink's own; when empty, the uplink's host (any port) and hosts in its parent domain (`*.example.test` for `registry.example.test`). A plain http realm is always refused for an https uplink",
    { default: [] },
  ),
  token: optional(string({ description: 'Bearer token sent upstream', secret: true })),
  username: optional(string('User name for HTTP Basic authentication upstream')),
  password: optional(
    string({ description: 'Password for HTTP Basic authentication upstream', secret: true }),
  ),
  connectTimeout: duration('Deadline to open a connection', { default: '5s', min: 10 }),
  headersTimeout: duration('Deadline for the response headers', { default: '30s', min: 10 }),
  bodyTimeout: duration('Longest silence while reading a body', { default: '60s', min: 10 }),
  retries: integer('Retries of idempotent requests after a connection error or 5xx', {
    default: 2,
    min: 0,
    max: 10,
  }),
  retryBackoff: duration('First retry delay; doubles each retry (with jitter)', { default: '200ms' }),
  connections: integer('Most keep-alive connections to this uplink', { default: 32, min: 1, max: 1024 }),
  breakerFailures: integer('Consecutive failures that open the circuit breaker', { default: 5, min: 1 }),
  breakerCooldown: duration('How long an open breaker waits before one half-open probe', {
    default: '30s',
  }),
};

const uplinkFields = object(UPLINK_KEYS, 'An upstream registry');

/**
 * A Go checksum database: the connection keys of an uplink, without those that only mean
 * something for a package registry (files elsewhere, package patterns, PyPI's JSON API, OCI
 * token realms). The door reads it with an uplink client that has them empty.
 */
const checksumDbSchema = object(
  {
    name: UPLINK_KEYS.name,
    url: string(
      "Base URL of the checksum database, under which `lookup/<module>@<version>`, `tile/…` and `latest` are read (e.g. `https://sumdb.example.test/` or a proxy's `…/sumdb/<name>/`)",
      { pattern: URL_PATTERN, format: 'an http(s) URL' },
    ),
    token: UPLINK_KEYS.token,
    username: UPLINK_KEYS.username,
    password: UPLINK_KEYS.password,
    connectTimeout: UPLINK_KEYS.connectTimeout,
    headersTimeout: UPLINK_KEYS.headersTimeout,
    bodyTimeout: UPLINK_KEYS.bodyTimeout,
    retries: UPLINK_KEYS.retries,
    retryBackoff: UPLINK_KEYS.retryBackoff,
    connections: UPLINK_KEYS.connections,
    breakerFailures: UPLINK_KEYS.breakerFailures,
    breakerCooldown: UPLINK_KEYS.breakerCooldown,
  },
  'The Go checksum database the door checks zips and go.mod files against (and serves at `/go/sumdb/<name>/` with `checksumDbKey`)',
);

/**
 * An upstream registry, with the checks that span keys: an https uplink's credentials never go
 * to a plain http token realm, so listing one in `tokenRealmOrigins` is a mistake.
 */
export const uplinkSchema = withProblems(uplinkFields, (_raw, parsed) => {
  if (parsed === INVALID || !parsed.url.startsWith('https:')) return [];
  const plain = parsed.tokenRealmOrigins.filter((o) => o.startsWith('http:'));
  return plain.length === 0
    ? []
    : [
        {
          field: 'tokenRealmOrigins',
          value: plain,
          expected:
            'https origins only: the uplink is https, and its credentials are never sent to a plain http token realm',
        },
      ];
});

const goFields = object(
  {
    enabled: boolean('Serve Go modules at `/go/` (needs at least one uplink)', { default: true }),
    uplinks: array(
      uplinkSchema,
      'Go module proxies (GOPROXY protocol), e.g. `https://goproxy.example.test/`',
      {
        default: [],
      },
    ),
    checksumDb: optional(checksumDbSchema),
    checksumDbKey: optional(
      string(
        'Verifier key of `checksumDb`, as `GOSUMDB` names it; when set, every lookup must carry a tree head signed by this key and prove its record into that tree (tiles), or the download is refused, and the door serves the database to the go command at `/go/sumdb/<key name>/`',
        {
          pattern: /^[^+\s]+\+[0-9a-f]{8}\+\S+$/,
          format: 'a checksum database key such as "sum.example.test+1a2b3c4d+AXp…"',
        },
      ),
    ),
  },
  "Go modules; `checksumDb` is a Go checksum database (`<url>/lookup/<module>@<version>`, e.g. a proxy's `…/sumdb/<name>/`) whose `h1:` hashes zips and go.mod files must match",
);

/**
 * The Go section, with the checks that span its keys: a verifier key needs the database it
 * verifies, and must be a key (its hash matching its name and Ed25519 key), so that `config
 * validate`, a start and a reload all refuse the same documents, naming the key.
 */
const goSchema = withProblems(goFields, (_raw, parsed) => {
  if (parsed === INVALID || parsed.checksumDbKey === undefined) return [];
  const problem = (expected: string) => [{ field: 'checksumDbKey', value: parsed.checksumDbKey, expected }];
  if (parsed.checksumDb === undefined)
    return problem('no key without `checksumDb`, the checksum database it verifies');
  try {
    parseVerifierKey(parsed.checksumDbKey);
  } catch (error) {
    return problem(`a checksum database key (${(error as Error).message})`);
  }
  return [];
});

/** The registry door's section. */
export const registryConfigSchema = object(
  {
    enabled: boolean('Run the registry door (npm at `/npm/`, PyPI at `/pypi/`)', { default: true }),
    auth: oneOf(
      ['anonymous', 'required'],
      'Whether package managers must authenticate (`registry:pull`) to use `/npm/` and `/pypi/`',
      {
        default: 'anonymous',
      },
    ),
    publicUrl: optional(
      string(
        'External base URL of Gatehouse used in rewritten tarball and file URLs; default: taken from each request',
        {
          pattern: URL_PATTERN,
          format: 'an http(s) URL',
        },
      ),
    ),
    npm: object(
      {
        enabled: boolean('Serve npm at `/npm/`', { default: true }),
        uplinks: array(
          uplinkSchema,
          'npm uplinks; when empty, one uplink "npm" uses `npm config get registry`',
          {
            default: [],
          },
        ),
      },
      'npm',
    ),
    pypi: object(
      {
        enabled: boolean('Serve PyPI at `/pypi/` (needs at least one uplink)', { default: true }),
        uplinks: array(uplinkSchema, 'PyPI uplinks (PEP 691 simple API)', { default: [] }),
      },
      'PyPI',
    ),
    go: goSchema,
    maven: object(
      {
        enabled: boolean('Serve Maven repositories at `/maven/` (needs at least one uplink)', {
          default: true,
        }),
        uplinks: array(
          uplinkSchema,
          'Maven 2 layout repositories, e.g. `https://repo.example.test/maven2/`',
          {
            default: [],
          },
        ),
      },
      'Maven; package patterns match `groupId:artifactId`',
    ),
    oci: object(
      {
        enabled: boolean(
          'Serve OCI / Docker registries at `/v2/<uplink>/<repository>/` (needs at least one uplink)',
          {
            default: true,
          },
        ),
        uplinks: array(
          uplinkSchema,
          'OCI registries (distribution-spec), addressed by their name as the first path component; `username`/`password` answer Basic and Bearer token challenges',
          { default: [] },
        ),
      },
      'OCI / Docker; package patterns match `<uplink>/<repository>`',
    ),
    cache: object(
      {
        metadataTtl: duration('How long filtered metadata is served before the upstream is asked again', {
          default: '5m',
        }),
        staleTtl: duration('How long the last good metadata is kept to answer while the upstream fails', {
          default: '7d',
        }),
        cutoffStep: duration('Granularity of the age cut-off in metadata cache keys', {
          default: '1m',
          min: 1000,
        }),
        maxMetadataSize: size('Largest upstream metadata document accepted', { default: '256MiB' }),
        workerThreshold: size('Metadata at least this large is parsed and filtered in a worker thread', {
          default: '1MiB',
        }),
        workers: integer('Worker threads for large metadata', { default: 2, min: 1, max: 16 }),
        tarballDir: optional(
          string('Folder of verified tarballs and files; default `<dataDir>/registry/blobs`'),
        ),
      },
      'Metadata and tarball cache',
    ),
    policy: policyConfigSchema,
    vulndb: vulndbConfigSchema,
  },
  'Registry door: npm and PyPI firewall proxy',
);

export type RegistryConfig = Infer<typeof registryConfigSchema>;
export type UplinkConfig = Infer<typeof uplinkSchema>;

export type ChecksumDbConfig = Infer<typeof checksumDbSchema>;

/** A checksum database as an uplink: the keys it does not take, empty. */
export const checksumDbUplink = (c: ChecksumDbConfig): UplinkConfig => ({
  ...c,
  jsonUrl: undefined,
  fileOrigins: [],
  packages: ['*'],
  tokenRealmOrigins: [],
});
