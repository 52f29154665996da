import type { Clock } from '#core/clock';
import { GatewayError } from '#core/errors';
import type { Principal, RoleBinding } from '#core/rbac';
import type { Database } from '#core/storage';
import { createCidrMatcher } from './cidr.ts';
import { randomId, randomSecret, secretMatches, sha256 } from './secrets.ts';
import type { ApiKeyRow, AuthTables } from './tables.ts';

/** The prefix that marks an API key, so transports can tell keys from JWTs. */
export const API_KEY_PREFIX = 'gh_';
const FORMAT = /^gh_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/** An API key as listed: never the secret. */
export interface ApiKey {
  readonly id: string;
  readonly name: string;
  readonly ownerId: string;
  readonly bindings: readonly RoleBinding[];
  readonly allowedCidrs?: readonly string[];
  readonly createdAt: string;
  readonly expiresAt?: string;
  readonly revokedAt?: string;
  readonly lastUsedAt?: string;
}

export interface CreateApiKeyInput {
  readonly name: string;
  readonly bindings: readonly RoleBinding[];
  /** Epoch milliseconds. */
  readonly expiresAt?: number;
  readonly allowedCidrs?: readonly string[];
}

/** True when `value` looks like an API key (cheap prefix test used by the dispatcher). */
export function looksLikeApiKey(value: string): boolean {
  return value.startsWith(API_KEY_PREFIX);
}

const iso = (ms: number) => new Date(ms).toISOString();

function toApiKey(row: ApiKeyRow): ApiKey {
  return {
    id: row.id,
    name: row.name,
    ownerId: row.owner_id,
    bindings: JSON.parse(row.bindings) as RoleBinding[],
    ...(row.allowed_cidrs === null ? {} : { allowedCidrs: JSON.parse(row.allowed_cidrs) as string[] }),
    createdAt: iso(row.created_at),
    ...(row.expires_at === null ? {} : { expiresAt: iso(row.expires_at) }),
    ...(row.revoked_at === null ? {} : { revokedAt: iso(row.revoked_at) }),
    ...(row.last_used_at === null ? {} : { lastUsedAt: iso(row.last_used_at) }),
  };
}

const KEY_NAME_MAX = 128;
// Printable: no control (Cc), format (Cf: bidi overrides, zero-width), separator-of-line or
// paragraph, surrogate or private-use characters, which would forge or hide text where names
// are shown (CLI tables, the console, audit records).
const KEY_NAME = new RegExp(`^[^\\p{Cc}\\p{Cf}\\p{Zl}\\p{Zp}\\p{Cs}\\p{Co}]{1,${KEY_NAME_MAX}}$`, 'u');

const invalidKey = () => new GatewayError('GW_ERR_AUTH_KEY_INVALID', { message: 'The API key is not valid' });

// Writing last-used on every request would turn reads into writes; a minute is precise enough.
const LAST_USED_RESOLUTION_MS = 60_000;
// Key records remembered by this replica; bounded so a flood of distinct valid keys cannot grow it.
const CACHE_MAX = 10_000;

/** The account that owns a key, as read with the key: undefined when it is gone. */
export interface KeyOwner {
  readonly name: string;
  readonly active: boolean;
}

/** A key record as last read, with its owner's account then. */
interface CachedKey {
  readonly row: ApiKeyRow;
  readonly owner: KeyOwner | undefined;
  readonly at: number;
}

/** The principal of a key, with its owner (the user whose bindings cap the key's). */
export type KeyPrincipal = Principal & { readonly ownerId: string; readonly ownerName: string };

function principalOf(row: ApiKeyRow, owner: KeyOwner): KeyPrincipal {
  const key = toApiKey(row);
  return {
    id: `key:${row.id}`,
    kind: 'apikey',
    name: row.name,
    ownerId: row.owner_id,
    ownerName: owner.name,
    bindings: key.bindings,
    ...(key.allowedCidrs === undefined ? {} : { allowedCidrs: key.allowedCidrs }),
    ...(row.expires_at === null ? {} : { expiresAt: row.expires_at }),
  };
}

/**
 * API keys `gh_<id>_<secret>`: shown once, stored as SHA-256, scoped to role bindings. A key
 * record read for authentication is reused for `cacheTtlMs` (the secret, revocation and expiry
 * are still checked on every call against it); a revocation or an owner change through this
 * object applies at once on this replica, one made on another replica within `cacheTtlMs`.
 */
export function createApiKeys(options: {
  readonly db: Database;
  readonly clock: Clock;
  readonly cacheTtlMs?: number;
}) {
  const { db, clock } = options;
  const ttlMs = options.cacheTtlMs ?? 0;
  const k = () => db.kysely<AuthTables>();
  const cache = new Map<string, CachedKey>();
  const forgetOwner = (ownerId: string) => {
    for (const [id, entry] of cache) if (entry.row.owner_id === ownerId) cache.delete(id);
  };

  /** The record of key `id` from the cache, or read from the database. */
  const record = async (
    id: string,
    ownerOf: (ownerId: string) => Promise<KeyOwner | undefined>,
  ): Promise<{ readonly entry: CachedKey; readonly fresh: boolean } | undefined> => {
    const now = clock.now();
    const hit = cache.get(id);
    if (hit !== undefined && now - hit.at < ttlMs) return { entry: hit, fresh: false };
    const row = await k().selectFrom('auth_api_keys').selectAll().where('id', '=', id).executeTakeFirst();
    if (row === undefined) return undefined;
    const entry = { row, owner: await ownerOf(row.owner_id), at: now };
    if (ttlMs > 0) {
      if (cache.size >= CACHE_MAX) cache.clear();
      cache.set(id, entry);
    }
    return { entry, fresh: true };
  };

  return {
    async create(ownerId: string, input: CreateApiKeyInput): Promise<{ key: ApiKey; secret: string }> {
      if (typeof input.name !== 'string' || !KEY_NAME.test(input.name)) {
        // The name is not echoed: it may hold the very characters that are refused.
        throw new GatewayError('GW_ERR_REQUEST_INVALID', {
          message: `Invalid API key name: use 1 to ${KEY_NAME_MAX} printable characters, without control or formatting characters`,
          details: {
            errors: [{ field: 'name', expected: `1 to ${KEY_NAME_MAX} printable characters` }],
          },
        });
      }
      if (input.allowedCidrs !== undefined) {
        try {
          createCidrMatcher(input.allowedCidrs);
        } catch (error) {
          throw new GatewayError('GW_ERR_REQUEST_INVALID', {
            message: (error as Error).message,
            details: { errors: [{ field: 'allowedCidrs', expected: 'IPv4 or IPv6 CIDR blocks' }] },
          });
        }
      }
      if (input.expiresAt !== undefined && input.expiresAt <= clock.now()) {
        throw new GatewayError('GW_ERR_REQUEST_INVALID', {
          message: 'The expiry of an API key must be in the future',
          details: { errors: [{ field: 'expiresAt', expected: 'a future time' }] },
        });
      }
      const id = randomId(8);
      const secret = randomSecret();
      const row: ApiKeyRow = {
        id,
        name: input.name,
        owner_id: ownerId,
        secret_hash: sha256(secret),
        bindings: JSON.stringify(input.bindings.map((b) => ({ role: b.role, namespace: b.namespace }))),
        allowed_cidrs: input.allowedCidrs === undefined ? null : JSON.stringify(input.allowedCidrs),
        created_at: clock.now(),
        expires_at: input.expiresAt ?? null,
        revoked_at: null,
        last_used_at: null,
      };
      await k().insertInto('auth_api_keys').values(row).execute();
      return { key: toApiKey(row), secret: `${API_KEY_PREFIX}${id}_${secret}` };
    },

    async list(ownerId?: string): Promise<ApiKey[]> {
      let query = k().selectFrom('auth_api_keys').selectAll().orderBy('created_at').orderBy('id');
      if (ownerId !== undefined) query = query.where('owner_id', '=', ownerId);
      return (await query.execute()).map(toApiKey);
    },

    async get(id: string): Promise<ApiKey> {
      const row = await k().selectFrom('auth_api_keys').selectAll().where('id', '=', id).executeTakeFirst();
      if (row === undefined)
        throw new GatewayError('GW_ERR_KEY_NOT_FOUND', { message: `No API key "${id}"`, details: { id } });
      return toApiKey(row);
    },

    async revoke(id: string): Promise<ApiKey> {
      await this.get(id);
      await k()
        .updateTable('auth_api_keys')
        .set({ revoked_at: clock.now() })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .execute();
      cache.delete(id);
      return this.get(id);
    },

    async revokeOwner(ownerId: string): Promise<void> {
      await k()
        .updateTable('auth_api_keys')
        .set({ revoked_at: clock.now() })
        .where('owner_id', '=', ownerId)
        .where('revoked_at', 'is', null)
        .execute();
      forgetOwner(ownerId);
    },

    /** Drops cached keys of an owner whose account changed (disabled or enabled). */
    forgetOwner,

    /**
     * The principal of a presented key; GW_ERR_AUTH_KEY_INVALID when unknown, revoked, expired
     * or owned by a disabled or deleted account (`ownerOf` is asked when the record is read).
     */
    async authenticate(
      presented: string,
      ownerOf: (ownerId: string) => Promise<KeyOwner | undefined>,
    ): Promise<KeyPrincipal> {
      const m = FORMAT.exec(presented);
      if (m === null) throw invalidKey();
      const [, id, secret] = m as unknown as [string, string, string];
      const found = await record(id, ownerOf);
      if (found === undefined || !secretMatches(secret, found.entry.row.secret_hash)) throw invalidKey();
      const { entry, fresh } = found;
      const { row } = entry;
      if (row.revoked_at !== null) throw invalidKey();
      if (row.expires_at !== null && row.expires_at <= clock.now()) {
        throw new GatewayError('GW_ERR_AUTH_KEY_INVALID', { message: 'The API key has expired' });
      }
      const { owner } = entry;
      if (owner === undefined || !owner.active) {
        throw new GatewayError('GW_ERR_AUTH_KEY_INVALID', {
          message: 'The owner of this API key is disabled',
        });
      }
      // Stamped when the record is read again, so a cached key costs no write.
      const now = clock.now();
      if (fresh && (row.last_used_at === null || now - row.last_used_at >= LAST_USED_RESOLUTION_MS)) {
        await k().updateTable('auth_api_keys').set({ last_used_at: now }).where('id', '=', id).execute();
      }
      return principalOf(row, owner);
    },
  };
}

/** API key operations. */
export type ApiKeys = ReturnType<typeof createApiKeys>;
