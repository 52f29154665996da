import {
  array,
  boolean,
  duration,
  type Infer,
  integer,
  object,
  oneOf,
  optional,
  record,
  size,
  string,
} from '#core/config';
import { ruleConfigSchema } from '#core/policy';
import { vulndbConfigSchema } from '#core/vulndb';

const ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;

const masterKeySchema = object(
  {
    id: string('Key id recorded with every data key it wraps', { pattern: ID, format: 'a lower-case id' }),
    secret: optional(
      string({ description: 'The 32-byte key as 64 hex digits or base64', secret: true }, { minLength: 1 }),
    ),
    file: optional(string('A file holding the key (32 raw bytes, hex or base64); read at start')),
  },
  'A master key (key-encryption key); give `secret` or `file`',
);

const s3Schema = object(
  {
    endpoint: string('Base URL of the S3-compatible API (path-style addressing)', { default: '' }),
    bucket: string('Bucket name', { default: '' }),
    region: string('Region used in SigV4 signatures', { default: 'us-east-1' }),
    accessKeyId: string('Access key id', { default: '' }),
    secretAccessKey: string({ description: 'Secret access key', secret: true }, { default: '' }),
    prefix: string('Key prefix inside the bucket', { default: 'artifacts/' }),
    partSize: size('Multipart part size; also the memory one upload holds', {
      default: '8MiB',
      min: 5 * 1024 * 1024,
    }),
  },
  'S3-compatible blob store settings (when `blobStore.kind` is `s3`)',
);

const trustedKeySchema = object(
  {
    id: string('Key id shown in verdicts and audit', { pattern: ID, format: 'a lower-case id' }),
    publicKey: string('PEM-encoded ECDSA P-256 public key (SPKI)', { minLength: 1 }),
  },
  'A trusted signing key',
);

/** The `artifacts` configuration section. */
export const artifactsConfigSchema = object(
  {
    enabled: boolean('Whether the artifacts door runs', { default: true }),
    blobStore: object(
      {
        kind: oneOf(['fs', 's3'], 'Where encrypted blobs are stored', { default: 'fs' }),
        path: string('Folder of the filesystem store; empty means `<data folder>/artifacts`', {
          default: '',
        }),
        s3: s3Schema,
      },
      'Blob storage',
    ),
    encryption: object(
      {
        segmentSize: size('Plaintext bytes per authenticated segment (64KiB to 1MiB)', {
          default: '256KiB',
          min: 64 * 1024,
          max: 1024 * 1024,
        }),
        activeKey: string(
          'Id of the master key that wraps new data keys (rotation: add a key, make it active)',
          {
            default: 'default',
          },
        ),
        keys: array(
          masterKeySchema,
          'Master keys; empty generates `default` in the data folder (development only)',
          { default: [] },
        ),
      },
      'Envelope encryption at rest',
    ),
    maxArtifactSize: size('Largest accepted artifact', { default: '10GiB' }),
    quotas: record(
      size('Quota of one repository'),
      { description: 'Per-repository storage quotas, keyed by repository', dynamic: true },
      { default: {} },
    ),
    defaultQuota: size(
      { description: 'Quota of repositories not listed in `quotas`; 0 means none', dynamic: true },
      {
        default: 0,
      },
    ),
    sweep: object(
      {
        staleAfter: duration(
          'An upload without heartbeat for this long is abandoned and swept (PostgreSQL)',
          {
            default: '2m',
          },
        ),
        interval: duration('How often staging and orphan sweeps run', { default: '5m' }),
      },
      'Cleanup of abandoned uploads and orphaned blobs',
    ),
    scan: object(
      {
        concurrency: integer('Scans run at once', { default: 1, min: 1, max: 16 }),
        queueLimit: integer('Most queued scans; uploads beyond it are refused', { default: 10_000, min: 1 }),
        maxAttempts: integer('Attempts before a scan is marked failed', { default: 5, min: 1, max: 100 }),
        retryBackoff: duration('Delay before the first retry; doubles per attempt', { default: '30s' }),
        pollInterval: duration('How often the worker looks for due jobs', { default: '2s' }),
        trivy: oneOf(['auto', 'off'], 'Use `trivy` (offline) when it is on PATH', { default: 'auto' }),
        trivyTimeout: duration('Longest one `trivy` run may take; it is then killed and the scan retried', {
          default: '15m',
        }),
        timeout: duration(
          'Longest one built-in scan may take; it then fails and is retried, the artifact staying quarantined',
          { default: '5m', min: 100 },
        ),
        maxEntries: integer('Most archive entries scanned per artifact', { default: 200_000, min: 1 }),
        maxExpandedSize: size('Most expanded bytes scanned per artifact', { default: '20GiB' }),
        maxDepth: integer('Deepest nesting of archives inside archives', { default: 5, min: 0, max: 32 }),
        maxRatio: integer('Highest expansion ratio of a compressed entry (archive bombs)', {
          default: 200,
          min: 1,
        }),
      },
      'Scanning',
    ),
    policy: object(
      {
        rules: array(ruleConfigSchema, 'Rules deciding approve or block after a scan', {
          default: [{ id: 'vulnerabilities', type: 'vulnerability', vulnerability: { threshold: 'high' } }],
        }),
      },
      { description: 'The artifact policy gate (core/policy rules)', dynamic: true },
    ),
    trust: object(
      {
        mode: oneOf(['off', 'require'], '`require`: every download needs a signature the policy trusts', {
          default: 'off',
        }),
        keys: array(trustedKeySchema, 'Trusted ECDSA P-256 keys', { default: [] }),
        roots: array(string('PEM certificate'), 'Trusted CA roots for x509 code-signing certificates', {
          default: [],
        }),
        subjects: array(
          string('Subject pattern; `*` matches any run of characters'),
          'Accepted certificate subjects (CN or SAN); empty accepts any under the roots',
          { default: [] },
        ),
      },
      { description: 'Signature trust policy checked before every download', dynamic: true },
    ),
    vulndb: vulndbConfigSchema,
    signing: object(
      {
        keyFile: string('PEM PKCS#8 ECDSA P-256 private key used by `POST …/signatures` with `sign: true`', {
          default: '',
        }),
      },
      'Server-side signing',
    ),
  },
  'The artifacts door: streamed upload, encryption at rest, scanning, signing and verified download',
);

export type ArtifactsConfig = Infer<typeof artifactsConfigSchema>;
