import { type KeyObject, randomUUID } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';
import type { Clock } from '#core/clock';
import { GatewayError } from '#core/errors';
import { ROLES, type Role, type RoleBinding } from '#core/rbac';
import { tokenError } from './jose-errors.ts';
import type { KeyRing } from './signing-keys.ts';

/** What Gatehouse puts into an access token beyond the registered claims. */
export interface AccessTokenSubject {
  /** The user id (`sub`). */
  readonly userId: string;
  readonly username: string;
  readonly bindings: readonly RoleBinding[];
  /** The refresh-token family (session) the token belongs to, so logout can revoke it. */
  readonly sessionId: string;
}

/** The verified content of an access token. */
export interface AccessTokenClaims extends AccessTokenSubject {
  readonly jti: string;
  readonly expiresAt: number;
}

export interface AccessTokenOptions {
  readonly keys: KeyRing;
  readonly clock: Clock;
  readonly issuer: string;
  readonly audience: string;
  readonly ttlMs: number;
  /** Finds keys of other replicas (the shared public key directory). */
  readonly lookup?: (kid: string) => Promise<KeyObject | undefined>;
}

// RFC 9068 section 2.1: access tokens carry `typ: at+jwt` so that other JWTs (ID tokens,
// tokens of other systems signed by a shared key) cannot be replayed as access tokens.
const TYP = 'at+jwt';
// Tolerated skew between replicas when checking exp/nbf of our own tokens.
const CLOCK_TOLERANCE_S = 5;

function parseBindings(value: unknown): RoleBinding[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const out: RoleBinding[] = [];
  for (const item of value) {
    if (typeof item !== 'object' || item === null) return undefined;
    const { role, ns } = item as { role?: unknown; ns?: unknown };
    if (typeof role !== 'string' || typeof ns !== 'string' || !(ROLES as readonly string[]).includes(role))
      return undefined;
    out.push({ role: role as Role, namespace: ns });
  }
  return out;
}

/** Issues and verifies Gatehouse access tokens (EdDSA JWTs, RFC 9068 profile). */
export function createAccessTokens(options: AccessTokenOptions) {
  const { keys, clock } = options;
  return {
    async issue(subject: AccessTokenSubject): Promise<{ token: string; expiresAt: number }> {
      const key = await keys.signingKey();
      const now = Math.floor(clock.now() / 1000);
      const exp = now + Math.floor(options.ttlMs / 1000);
      const token = await new SignJWT({
        name: subject.username,
        sid: subject.sessionId,
        bindings: subject.bindings.map((b) => ({ role: b.role, ns: b.namespace })),
      })
        .setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: TYP })
        .setIssuer(options.issuer)
        .setAudience(options.audience)
        .setSubject(subject.userId)
        .setIssuedAt(now)
        .setNotBefore(now)
        .setExpirationTime(exp)
        .setJti(randomUUID())
        .sign(key.privateKey);
      return { token, expiresAt: exp * 1000 };
    },

    async verify(token: string): Promise<AccessTokenClaims> {
      let payload;
      try {
        ({ payload } = await jwtVerify(
          token,
          async (header) => {
            const kid = header.kid;
            const key =
              kid === undefined ? undefined : (keys.get(kid)?.publicKey ?? (await options.lookup?.(kid)));
            if (key === undefined) {
              throw new GatewayError('GW_ERR_AUTH_TOKEN_INVALID', {
                message: 'The access token is signed with an unknown key',
              });
            }
            return key;
          },
          {
            issuer: options.issuer,
            audience: options.audience,
            algorithms: ['EdDSA'],
            typ: TYP,
            currentDate: new Date(clock.now()),
            clockTolerance: CLOCK_TOLERANCE_S,
            requiredClaims: ['sub', 'exp', 'iat', 'nbf', 'jti'],
          },
        ));
      } catch (error) {
        throw tokenError(error, 'access token');
      }
      const bindings = parseBindings(payload['bindings']);
      const { name, sid } = payload as { name?: unknown; sid?: unknown };
      if (bindings === undefined || typeof name !== 'string' || typeof sid !== 'string') {
        throw new GatewayError('GW_ERR_AUTH_TOKEN_INVALID', {
          message: 'The access token lacks Gatehouse claims',
        });
      }
      return {
        userId: payload.sub as string,
        username: name,
        bindings,
        sessionId: sid,
        jti: payload.jti as string,
        expiresAt: (payload.exp as number) * 1000,
      };
    },
  };
}

/** Issues and verifies access tokens. */
export type AccessTokens = ReturnType<typeof createAccessTokens>;
