import { GatewayError } from '#core/errors';
import { authorize, namespaceCovers, type Principal, type RoleBinding } from '#core/rbac';
import type { ApiKey, ApiKeys, CreateApiKeyInput } from './api-keys.ts';
import { createCidrMatcher } from './cidr.ts';

/** The owner (user id) behind a principal that can own API keys. */
function ownerOf(principal: Principal & { ownerId?: string }): string | undefined {
  if (principal.kind === 'user' && principal.id.startsWith('user:')) return principal.id.slice(5);
  if (principal.kind === 'apikey') return principal.ownerId;
  return undefined;
}

const canManageAll = (p: Principal) => authorize(p, 'keys:write', { type: 'key' }).allowed;
const canReadAll = (p: Principal) => authorize(p, 'keys:read', { type: 'key' }).allowed;

/**
 * Whether `owner` may put `binding` on a key: an admin of keys (`keys:write`) any, everybody
 * else only the roles it holds itself. Checked when a key is created and, against the owner's
 * bindings of the moment, on every use of the key, so a key never outlives its owner's roles.
 */
export function mayGrant(owner: Principal, binding: RoleBinding): boolean {
  return (
    canManageAll(owner) ||
    owner.bindings.some((b) => b.role === binding.role && namespaceCovers(b.namespace, binding.namespace))
  );
}

const outsideParent = (field: string, expected: string, message: string) =>
  new GatewayError('GW_ERR_REQUEST_INVALID', { message, details: { errors: [{ field, expected }] } });

/**
 * A key made with another key stays inside it: it expires no later and is usable from no other
 * addresses, so a leaked short-lived or address-bound key cannot mint a lasting, unrestricted
 * one. Without an expiry or an allow-list of its own, the new key takes the creating key's.
 */
function withinCreatingKey(creator: Principal, input: CreateApiKeyInput): CreateApiKeyInput {
  if (creator.kind !== 'apikey') return input;
  let bounded = input;
  const until = creator.expiresAt;
  if (until !== undefined) {
    if (input.expiresAt === undefined) bounded = { ...bounded, expiresAt: until };
    else if (input.expiresAt > until) {
      const at = new Date(until).toISOString();
      throw outsideParent(
        'expiresAt',
        `no later than ${at}`,
        `A key created with the API key "${creator.name}" cannot expire after it (${at})`,
      );
    }
  }
  const parentCidrs = creator.allowedCidrs ?? [];
  if (parentCidrs.length > 0) {
    // An empty list means "from anywhere" to the authenticator, so it is no narrowing either.
    if (input.allowedCidrs === undefined || input.allowedCidrs.length === 0) {
      bounded = { ...bounded, allowedCidrs: parentCidrs };
    } else {
      const parent = createCidrMatcher(parentCidrs);
      const outside = input.allowedCidrs.find((cidr) => {
        try {
          return !parent.covers(cidr);
        } catch {
          // Not a CIDR at all: the key store refuses it with the parse error.
          return false;
        }
      });
      if (outside !== undefined) {
        throw outsideParent(
          'allowedCidrs',
          `blocks inside ${parentCidrs.join(', ')}`,
          `"${outside}" is outside the allow-list of the API key "${creator.name}" that creates this key`,
        );
      }
    }
  }
  return bounded;
}

const notFound = (id: string) =>
  new GatewayError('GW_ERR_KEY_NOT_FOUND', { message: `No API key "${id}"`, details: { id } });

/**
 * API key management with its authorization rules: admins (`keys:write`) manage every key;
 * everybody else manages only their own keys, and only with roles they hold themselves; a key
 * created with a key is bounded by it (expiry and address allow-list). Keys
 * of others are answered as not found, so their ids cannot be probed.
 */
export function createKeyOperations(apiKeys: ApiKeys) {
  return {
    async create(creator: Principal, input: CreateApiKeyInput): Promise<{ key: ApiKey; secret: string }> {
      const owner = ownerOf(creator);
      if (owner === undefined || !input.bindings.every((b) => mayGrant(creator, b))) {
        throw new GatewayError('GW_ERR_RBAC_DENIED', {
          message: `"${creator.name}" cannot create an API key with roles it does not hold`,
        });
      }
      return apiKeys.create(owner, withinCreatingKey(creator, input));
    },
    async list(viewer: Principal): Promise<ApiKey[]> {
      if (canReadAll(viewer)) return apiKeys.list();
      const owner = ownerOf(viewer);
      return owner === undefined ? [] : apiKeys.list(owner);
    },
    async get(viewer: Principal, id: string): Promise<ApiKey> {
      const key = await apiKeys.get(id);
      if (!canReadAll(viewer) && key.ownerId !== ownerOf(viewer)) throw notFound(id);
      return key;
    },
    async revoke(actor: Principal, id: string): Promise<ApiKey> {
      const key = await apiKeys.get(id);
      if (!canManageAll(actor) && key.ownerId !== ownerOf(actor)) throw notFound(id);
      return apiKeys.revoke(id);
    },
  };
}
