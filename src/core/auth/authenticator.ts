import { decodeJwt } from 'jose';
import { GatewayError } from '#core/errors';
import type { BindingStore, Principal } from '#core/rbac';
import type { ApiKeys, KeyOwner } from './api-keys.ts';
import { looksLikeApiKey } from './api-keys.ts';
import { createCidrMatcher } from './cidr.ts';
import type { ExternalValidator } from './external-jwt.ts';
import { mayGrant } from './key-operations.ts';
import type { Credentials, PeerCertificateInfo } from './port.ts';
import type { Sessions } from './sessions.ts';
import { type UserStore, userSubject, userSubjects } from './users.ts';

function checkAddress(principal: Principal, clientIp: string | undefined): void {
  if (principal.allowedCidrs === undefined || principal.allowedCidrs.length === 0) return;
  // Fail closed: a transport that could not tell the address does not pass an allow-list.
  if (clientIp !== undefined && createCidrMatcher(principal.allowedCidrs).matches(clientIp)) return;
  throw new GatewayError('GW_ERR_AUTH_IP_NOT_ALLOWED', {
    message: `Address "${clientIp ?? 'unknown'}" is not allowed for "${principal.name}"`,
  });
}

/** Which validator `authenticate` picks for credentials (a metrics label). */
export function credentialMethod(credentials: Credentials): 'apikey' | 'token' | 'certificate' | 'none' {
  if (credentials.apiKey !== undefined) return 'apikey';
  if (credentials.bearer !== undefined) return looksLikeApiKey(credentials.bearer) ? 'apikey' : 'token';
  return credentials.certificate === undefined ? 'none' : 'certificate';
}

/**
 * Turns credentials into a principal: an API key (header, or a bearer with the key prefix),
 * a Gatehouse access token (our `iss`), an external JWT (a configured issuer) or a client
 * certificate, then applies the principal's address allow-list.
 */
export function createCredentialAuthenticator(deps: {
  readonly issuer: string;
  readonly apiKeys: ApiKeys;
  readonly users: UserStore;
  readonly sessions: Sessions;
  readonly bindings: BindingStore;
  readonly external: ReadonlyMap<string, ExternalValidator>;
  readonly mapCertificate: (info: PeerCertificateInfo) => Principal;
}) {
  const withStoredBindings = async (principal: Principal): Promise<Principal> => {
    const extra = await deps.bindings.resolve([principal.id]);
    return extra.length === 0 ? principal : { ...principal, bindings: [...principal.bindings, ...extra] };
  };

  const ownerOf = async (ownerId: string): Promise<KeyOwner | undefined> => {
    const owner = await deps.users.row(ownerId).catch(() => undefined);
    return owner === undefined ? undefined : { name: owner.username, active: owner.disabled === 0 };
  };
  // A key holds the bindings it was created with that its owner could still grant it now (a
  // demoted owner's keys lose what the owner lost), plus any binding naming `key:<id>`.
  const fromApiKey = async (presented: string): Promise<Principal> => {
    const key = await deps.apiKeys.authenticate(presented, ownerOf);
    const owner: Principal = {
      id: userSubject(key.ownerId),
      kind: 'user',
      name: key.ownerName,
      bindings: await deps.bindings.resolve(userSubjects(key.ownerId, key.ownerName)),
    };
    const bindings = key.bindings.filter((b) => mayGrant(owner, b));
    return withStoredBindings(bindings.length === key.bindings.length ? key : { ...key, bindings });
  };

  const fromBearer = async (token: string): Promise<Principal> => {
    let issuer: unknown;
    try {
      issuer = decodeJwt(token).iss;
    } catch (error) {
      throw new GatewayError('GW_ERR_AUTH_TOKEN_INVALID', {
        message: 'The bearer token is malformed',
        cause: error,
      });
    }
    if (issuer === deps.issuer) return deps.sessions.principalOf(token);
    const validator = typeof issuer === 'string' ? deps.external.get(issuer) : undefined;
    if (validator === undefined) {
      throw new GatewayError('GW_ERR_AUTH_TOKEN_INVALID', { message: 'The token issuer is not trusted' });
    }
    return withStoredBindings(await validator.verify(token));
  };

  const principalFromCertificate = (info: PeerCertificateInfo) =>
    withStoredBindings(deps.mapCertificate(info));

  const authenticate = async (credentials: Credentials): Promise<Principal> => {
    const { apiKey, bearer, certificate } = credentials;
    // Two credentials could name two principals, and which one counts would depend on who reads
    // them (a proxy in front may have checked the other): neither does. A client certificate
    // beside a bearer token or an API key is usual (mTLS as the transport), the header wins.
    if (apiKey !== undefined && bearer !== undefined)
      throw new GatewayError('GW_ERR_AUTH_TOKEN_INVALID', {
        message: 'Both an API key (x-api-key) and a bearer token were sent: send one credential',
      });
    let principal: Principal;
    if (apiKey !== undefined) principal = await fromApiKey(apiKey);
    else if (bearer !== undefined && looksLikeApiKey(bearer)) principal = await fromApiKey(bearer);
    else if (bearer !== undefined) principal = await fromBearer(bearer);
    else if (certificate !== undefined) principal = await principalFromCertificate(certificate);
    else throw new GatewayError('GW_ERR_AUTH_REQUIRED');
    checkAddress(principal, credentials.clientIp);
    return principal;
  };

  return { authenticate, principalFromCertificate };
}
