import {
  createLocalJWKSet,
  decodeProtectedHeader,
  errors,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
} from 'jose';
import type { Clock } from '#core/clock';
import { GatewayError, isGatewayError } from '#core/errors';
import type { Logger } from '#core/log';
import { ROLES, type Principal, type Role, type RoleBinding } from '#core/rbac';
import type { JwksConfig } from './config.ts';
import { tokenError } from './jose-errors.ts';

function unavailable(config: JwksConfig, reason: string, cause?: unknown): GatewayError {
  return new GatewayError('GW_ERR_AUTH_JWKS_UNAVAILABLE', {
    message: `Cannot fetch the key set of issuer "${config.name}": ${reason}`,
    details: { issuer: config.name },
    cause,
  });
}

// How long a failed fetch is answered from memory before the issuer is asked again.
const FAILURE_BACKOFF_MS = 5_000;

// A key set is a few KiB; a bound keeps a broken or hostile endpoint from filling memory.
const MAX_JWKS_BYTES = 512 * 1024;

async function readBoundedJson(response: Response, config: JwksConfig): Promise<unknown> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body ?? []) {
      size += (chunk as Uint8Array).byteLength;
      // Leaving the loop by throwing cancels the stream, so the rest is never read.
      if (size > MAX_JWKS_BYTES) throw unavailable(config, `the response exceeds ${MAX_JWKS_BYTES} bytes`);
      chunks.push(chunk as Uint8Array);
    }
  } catch (error) {
    if (isGatewayError(error)) throw error;
    throw unavailable(
      config,
      (error as Error).name === 'TimeoutError' ? 'timed out' : 'the response broke off',
      error,
    );
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch (error) {
    throw unavailable(config, 'the response is not JSON', error);
  }
}

/** The key set of one issuer, fetched lazily, refreshed after `cacheMaxAge`, bounded refetch on unknown kid. */
export function createRemoteKeySet(config: JwksConfig, clock: Clock, log: Logger) {
  let local: ReturnType<typeof createLocalJWKSet> | undefined;
  let fetchedAt = Number.NEGATIVE_INFINITY;
  let inflight: Promise<void> | undefined;
  let fetches = 0;
  let failure: { at: number; error: unknown } | undefined;

  const fetchNow = async () => {
    fetches++;
    fetchedAt = clock.now();
    let response: Response;
    try {
      response = await fetch(config.url, {
        signal: AbortSignal.timeout(config.timeout),
        headers: { accept: 'application/json' },
        redirect: 'error',
      });
    } catch (error) {
      throw unavailable(
        config,
        (error as Error).name === 'TimeoutError' ? 'timed out' : 'connection failed',
        error,
      );
    }
    if (!response.ok) throw unavailable(config, `status ${response.status}`);
    const body = await readBoundedJson(response, config);
    try {
      local = createLocalJWKSet(body as JSONWebKeySet);
    } catch (error) {
      throw unavailable(config, 'the response is not a JWK set', error);
    }
    log.debug('Fetched a JWKS', { issuer: config.name });
  };
  const refresh = () => {
    inflight ??= fetchNow().finally(() => {
      inflight = undefined;
    });
    return inflight;
  };

  const ensureFresh = async () => {
    if (local !== undefined && clock.now() - fetchedAt < config.cacheMaxAge) return;
    // After a failed fetch, answer from the failure for a moment instead of letting every
    // request hit an issuer that is down.
    if (failure !== undefined && clock.now() - failure.at < FAILURE_BACKOFF_MS) {
      if (local === undefined) throw failure.error;
      return;
    }
    try {
      await refresh();
      failure = undefined;
    } catch (error) {
      failure = { at: clock.now(), error };
      // Stale keys are better than none while the issuer is unreachable.
      if (local === undefined) throw error;
      log.warn('Using the cached key set; refreshing it failed', { issuer: config.name, error });
    }
  };

  const getKey: JWTVerifyGetKey = async (header, token) => {
    await ensureFresh();
    try {
      return await (local as ReturnType<typeof createLocalJWKSet>)(header, token);
    } catch (error) {
      // A rotated issuer key appears as an unknown kid: refetch once, but never more often than
      // the cooldown, so that tokens with random kids cannot make us hammer the issuer.
      if (!(error instanceof errors.JWKSNoMatchingKey) || clock.now() - fetchedAt < config.refetchCooldown)
        throw error;
      await refresh();
      return (local as ReturnType<typeof createLocalJWKSet>)(header, token);
    }
  };
  return {
    getKey,
    get fetches() {
      return fetches;
    },
  };
}

function claimString(payload: JWTPayload, claim: string): string | undefined {
  const value = payload[claim];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function bindingsFromClaim(payload: JWTPayload, claim: string, log: Logger, issuer: string): RoleBinding[] {
  const value = payload[claim];
  const entries = Array.isArray(value) ? value : typeof value === 'string' ? value.split(/[ ,]+/) : [];
  const out: RoleBinding[] = [];
  for (const entry of entries) {
    if (typeof entry !== 'string') continue;
    const [role, namespace] = entry.split(':', 2);
    if (
      role === undefined ||
      namespace === undefined ||
      namespace === '' ||
      !(ROLES as readonly string[]).includes(role)
    ) {
      continue;
    }
    // "*" only comes from an explicit binding in our own configuration, never from a token.
    if (namespace === '*') {
      log.warn('Ignoring a wildcard role from a token claim', { issuer, role });
      continue;
    }
    out.push({ role: role as Role, namespace });
  }
  return out;
}

/** Validates JWTs of one external issuer and maps them to principals. */
export function createExternalValidator(config: JwksConfig, clock: Clock, log: Logger) {
  const keys = createRemoteKeySet(config, clock, log);
  return {
    config,
    keys,
    async verify(token: string): Promise<Principal> {
      let header;
      try {
        header = decodeProtectedHeader(token);
      } catch (error) {
        throw tokenError(error, 'token');
      }
      if (typeof header.kid !== 'string' || header.kid === '') {
        throw new GatewayError('GW_ERR_AUTH_TOKEN_INVALID', { message: 'The token has no "kid" header' });
      }
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, keys.getKey, {
          issuer: config.issuer,
          audience: [...config.audiences],
          algorithms: [...config.algorithms],
          clockTolerance: Math.floor(config.clockTolerance / 1000),
          currentDate: new Date(clock.now()),
          requiredClaims: ['exp'],
        }));
      } catch (error) {
        throw tokenError(error, 'token');
      }
      // A token issued later than now (beyond the tolerance) comes from a wrong clock or was made
      // ahead of time; jose checks "iat" only against a maximum token age.
      if (typeof payload.iat === 'number' && payload.iat * 1000 > clock.now() + config.clockTolerance)
        throw new GatewayError('GW_ERR_AUTH_TOKEN_INVALID', {
          message: 'The token is issued in the future ("iat" is later than now)',
        });
      const subject = claimString(payload, config.subjectClaim);
      if (subject === undefined) {
        throw new GatewayError('GW_ERR_AUTH_TOKEN_INVALID', {
          message: `The token has no "${config.subjectClaim}" claim`,
        });
      }
      const fromClaim =
        config.rolesClaim === undefined
          ? []
          : bindingsFromClaim(payload, config.rolesClaim, log, config.name);
      return {
        id: `jwt:${config.name}#${subject}`,
        kind: 'token',
        name: claimString(payload, config.nameClaim) ?? subject,
        bindings: [...config.bindings, ...fromClaim],
        ...(typeof payload.exp === 'number' ? { expiresAt: payload.exp * 1000 } : {}),
      };
    },
  };
}

/** One external issuer's validator. */
export type ExternalValidator = ReturnType<typeof createExternalValidator>;
