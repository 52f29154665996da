import {
  array,
  duration,
  type Infer,
  INVALID,
  integer,
  object,
  oneOf,
  optional,
  type SchemaProblem,
  string,
  withProblems,
} from '#core/config';
import { ROLES, roleBindingSchema } from '#core/rbac';

/** Asymmetric JWS algorithms accepted from external issuers; HS* and `none` can never be enabled. */
export const EXTERNAL_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'EdDSA',
] as const;

// JWKS must come over TLS, except from loopback (local identity providers and tests).
const JWKS_URL = /^(https:\/\/[^\s]+|http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d{1,5})?\/[^\s]*)$/;

const jwksSchema = object(
  {
    name: string('Short name of the issuer, used in principal ids ("jwt:<name>#<sub>") and logs', {
      pattern: /^[a-z0-9][a-z0-9-]{0,62}$/,
      format: 'a lower-case name such as "corp-sso"',
    }),
    url: string('JWKS URL of the issuer (https, or http on loopback only)', {
      pattern: JWKS_URL,
      format: 'an https URL (http only for 127.0.0.1, localhost or [::1])',
    }),
    issuer: string('Exact "iss" claim tokens of this issuer carry', { minLength: 1 }),
    audiences: array(
      string('An accepted "aud" value', { minLength: 1 }),
      'Accepted "aud" values; one must match',
      {
        default: ['gatehouse'],
      },
    ),
    algorithms: array(oneOf(EXTERNAL_ALGORITHMS, 'A JWS algorithm'), 'Algorithm allow-list', {
      default: ['RS256', 'ES256', 'EdDSA'],
    }),
    clockTolerance: duration(
      'Allowed clock skew when checking exp, nbf and iat (a token issued later than now is refused)',
      {
        default: '30s',
        max: 300_000,
      },
    ),
    timeout: duration('Timeout of one JWKS fetch', { default: '5s', min: 100 }),
    cacheMaxAge: duration('How long a fetched key set is used before it is fetched again', {
      default: '10m',
    }),
    refetchCooldown: duration('Minimum time between two fetches caused by an unknown "kid"', {
      default: '30s',
    }),
    subjectClaim: string('Claim holding the stable subject id', { default: 'sub' }),
    nameClaim: string('Claim shown as the display name', { default: 'sub' }),
    bindings: array(roleBindingSchema, 'Role bindings every token of this issuer gets', { default: [] }),
    rolesClaim: optional(
      string('Claim holding a list of "role:namespace" entries; "*" namespaces from the claim are ignored'),
    ),
  },
  'An external JWT issuer',
);

const mtlsBindingSchema = object(
  {
    role: oneOf(ROLES, 'Role granted'),
    namespace: string('Namespace, "*", or a template with captures such as "$1"', {
      pattern: /^(\*|[A-Za-z0-9$][A-Za-z0-9._\-/$]{0,252})$/,
      format: 'a namespace name, "*" or a template such as "$1"',
    }),
  },
  'A role granted to a certificate principal',
);

const mtlsRuleSchema = object(
  {
    match: string(
      'Pattern on the certificate: "SAN:URI:<glob>", "SAN:DNS:<glob>", "SAN:email:<glob>" or "CN:<glob>"; "*" matches within one path segment, "**" across segments, captures are $1, $2…',
      {
        pattern: /^(SAN:(URI|DNS|email):|CN:).+$/,
        format: 'a pattern such as "SAN:URI:spiffe://example.test/ns/*"',
      },
    ),
    principal: string('Principal name, may use captures, e.g. "svc:$1"', { minLength: 1 }),
    bindings: array(mtlsBindingSchema, 'Role bindings of the principal; namespaces may use captures ("$1")', {
      default: [],
    }),
  },
  'One client-certificate mapping rule',
);

const authFields = object(
  {
    issuer: string('The "iss" claim of access tokens Gatehouse signs', {
      default: 'gatehouse',
      minLength: 1,
    }),
    audience: string('The "aud" claim of access tokens Gatehouse signs', {
      default: 'gatehouse',
      minLength: 1,
    }),
    accessTokenTtl: duration('Lifetime of an access token', { default: '15m', min: 10_000, max: 86_400_000 }),
    refreshTokenTtl: duration('Lifetime of a refresh token family', { default: '7d', min: 60_000 }),
    signingKeyRotation: duration('Age after which a new signing key is generated at start', {
      default: '30d',
    }),
    cacheTtl: duration(
      'How long a replica reuses role bindings and API-key records it read; changes made through this replica apply at once, through another within this time',
      { default: '5s', max: 60_000 },
    ),
    adminPassword: optional(
      string(
        {
          description: 'Password of the bootstrapped "admin" account; random and printed once when absent',
          secret: true,
          env: 'GATEHOUSE_ADMIN_PASSWORD',
        },
        { minLength: 12 },
      ),
    ),
    password: object(
      {
        minLength: integer('Minimum password length', { default: 12, min: 12, max: 1024 }),
        scrypt: object(
          {
            ln: integer('log2 of the scrypt cost N (17 = 128 MiB per hash with r=8)', {
              default: 17,
              min: 10,
              max: 22,
            }),
            r: integer('scrypt block size', { default: 8, min: 1, max: 32 }),
            p: integer('scrypt parallelism', { default: 1, min: 1, max: 16 }),
          },
          'scrypt parameters; stored with each hash, and a login rehashes when they change',
        ),
      },
      'Password policy and hashing',
    ),
    lockout: object(
      {
        maxFailures: integer(
          'Failed logins of one account from one client address (an IPv6 /64) within the window that lock the account for that address',
          { default: 5, min: 1, max: 100 },
        ),
        window: duration('Failures older than this are forgotten', { default: '15m' }),
        lockFor: duration('How long an account stays locked for the address that failed', { default: '15m' }),
        backoffBase: duration(
          'Delay after the first failure, doubled after each further one (per account and address; account-wide from account.maxFailures)',
          { default: '1s' },
        ),
        account: object(
          {
            maxFailures: integer(
              'Failed logins of one account from all addresses within the window from which every attempt on it backs off, except from addresses it logged in from in the last 30 days',
              { default: 50, min: 2, max: 100_000 },
            ),
            maxDelay: duration('Longest account-wide backoff delay; the account is never locked for longer', {
              default: '30s',
              min: 1000,
              max: 300_000,
            }),
          },
          'Account-wide guard against guessing from many addresses: a capped backoff, never a lock',
        ),
      },
      'Backoff and lockout after failed logins, per account and client address',
    ),
    loginRate: object(
      {
        rate: integer('Login attempts per minute per client address', { default: 10, min: 1 }),
        burst: integer('Burst of login attempts per client address', { default: 10, min: 1 }),
      },
      'Per-address rate limit of POST /api/auth/login',
    ),
    jwks: array(jwksSchema, 'External JWT issuers validated through their JWKS URLs', { default: [] }),
    mtls: object(
      {
        rules: array(mtlsRuleSchema, 'Rules mapping client certificates to principals, first match wins', {
          default: [],
        }),
      },
      'Client certificate (mTLS) principals; a certificate no rule maps is refused',
    ),
  },
  'Identity: passwords, tokens, API keys, external JWTs and client certificates',
);

/**
 * External issuers must be told apart: principals of one are `jwt:<name>#<sub>`, so under a
 * shared name a user of one identity provider would get the bindings granted to the same subject
 * of the other; a shared issuer would leave one entry unused, and tokens naming Gatehouse's own
 * issuer are always checked as its own.
 */
function issuerProblems(auth: Infer<typeof authFields>): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  const names = new Map<string, number>();
  const issuers = new Map<string, number>();
  for (const [i, jwks] of auth.jwks.entries()) {
    const named = names.get(jwks.name);
    if (named === undefined) names.set(jwks.name, i);
    else
      problems.push({
        field: `jwks[${i}].name`,
        value: jwks.name,
        expected: `a name no other issuer has ("${jwks.name}" is the name of auth.jwks[${named}])`,
      });
    const issued = issuers.get(jwks.issuer);
    if (jwks.issuer === auth.issuer)
      problems.push({
        field: `jwks[${i}].issuer`,
        value: jwks.issuer,
        expected: `another issuer than auth.issuer "${auth.issuer}" (the tokens Gatehouse signs)`,
      });
    else if (issued === undefined) issuers.set(jwks.issuer, i);
    else
      problems.push({
        field: `jwks[${i}].issuer`,
        value: jwks.issuer,
        expected: `an issuer no other entry has ("${jwks.issuer}" is auth.jwks[${issued}]'s)`,
      });
  }
  return problems;
}

/** The `auth` configuration section. */
export const authConfigSchema = withProblems(authFields, (_raw, parsed) =>
  parsed === INVALID ? [] : issuerProblems(parsed),
);

/** Parsed `auth` section. */
export type AuthConfig = Infer<typeof authConfigSchema>;
/** One external issuer. */
export type JwksConfig = AuthConfig['jwks'][number];
/** One mTLS rule. */
export type MtlsRule = AuthConfig['mtls']['rules'][number];
