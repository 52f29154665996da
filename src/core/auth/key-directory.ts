import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import type { Clock } from '#core/clock';
import type { Database } from '#core/storage';
import type { AuthTables } from './tables.ts';

/**
 * The public halves of every replica's signing keys, in the shared database. Private keys stay
 * in each replica's data folder (mode 0600); publishing the public keys lets any replica verify
 * a token another replica signed, and lets `/.well-known/jwks.json` list them all.
 */
export interface PublicKeyDirectory {
  publish(key: { readonly kid: string; readonly createdAt: number; readonly publicJwk: JWK }): Promise<void>;
  /** Marks a key as no longer signing; it keeps verifying for `retainFor`. */
  retire(kid: string): Promise<void>;
  /** The verification key of `kid`, or undefined when unknown or retired too long ago. */
  lookup(kid: string): Promise<KeyObject | undefined>;
  /** Every public key that may still verify a token. */
  list(): Promise<JWK[]>;
}

// Unknown kids are remembered briefly, so tokens with random kids cannot turn every request
// into a database query.
const NEGATIVE_CACHE_MS = 5_000;
const CACHE_MAX = 1_000;

/** Opens the directory on the `auth_signing_keys` table. */
export function createPublicKeyDirectory(options: {
  readonly db: Database;
  readonly clock: Clock;
  readonly retainFor: number;
}): PublicKeyDirectory {
  const { db, clock, retainFor } = options;
  const k = () => db.kysely<AuthTables>();
  const cache = new Map<string, { key: KeyObject | undefined; at: number; retiredAt: number | null }>();
  const usable = (retiredAt: number | null) => retiredAt === null || clock.now() - retiredAt <= retainFor;

  return {
    async publish(key) {
      await k()
        .insertInto('auth_signing_keys')
        .values({
          kid: key.kid,
          public_jwk: JSON.stringify(key.publicJwk),
          created_at: key.createdAt,
          retired_at: null,
        })
        .onConflict((oc) => oc.column('kid').doNothing())
        .execute();
    },
    async retire(kid) {
      const now = clock.now();
      await k()
        .updateTable('auth_signing_keys')
        .set({ retired_at: now })
        .where('kid', '=', kid)
        .where('retired_at', 'is', null)
        .execute();
      await k()
        .deleteFrom('auth_signing_keys')
        .where('retired_at', '<', now - retainFor)
        .execute();
      cache.delete(kid);
    },
    async lookup(kid) {
      const cached = cache.get(kid);
      if (cached !== undefined && (cached.key !== undefined || clock.now() - cached.at < NEGATIVE_CACHE_MS)) {
        return cached.key !== undefined && usable(cached.retiredAt) ? cached.key : undefined;
      }
      const row = await k()
        .selectFrom('auth_signing_keys')
        .selectAll()
        .where('kid', '=', kid)
        .executeTakeFirst();
      let key: KeyObject | undefined;
      try {
        key =
          row === undefined
            ? undefined
            : createPublicKey({ key: JSON.parse(row.public_jwk) as JsonWebKey, format: 'jwk' });
      } catch {
        key = undefined;
      }
      if (cache.size >= CACHE_MAX) cache.clear();
      cache.set(kid, { key, at: clock.now(), retiredAt: row?.retired_at ?? null });
      return key !== undefined && usable(row?.retired_at ?? null) ? key : undefined;
    },
    async list() {
      const rows = await k().selectFrom('auth_signing_keys').selectAll().orderBy('created_at').execute();
      return rows.filter((r) => usable(r.retired_at)).map((r) => JSON.parse(r.public_jwk) as JWK);
    },
  };
}
