import type { Clock } from '#core/clock';
import { GatewayError } from '#core/errors';
import type { Database } from '#core/storage';
import { randomId, randomSecret, secretMatches, sha256 } from './secrets.ts';
import type { AuthTables, RefreshTokenRow } from './tables.ts';

/** The outcome of a refresh: the new token, and the family and user it belongs to. */
export interface RotatedRefreshToken {
  readonly token: string;
  readonly familyId: string;
  readonly userId: string;
  readonly expiresAt: number;
}

const FORMAT = /^([0-9a-f]{24})\.([A-Za-z0-9_-]{43})$/;

function revoked(message: string, details: Record<string, unknown> = {}): GatewayError {
  return new GatewayError('GW_ERR_AUTH_TOKEN_REVOKED', { message, details });
}

/**
 * Opaque refresh tokens `<id>.<secret>`, stored as SHA-256, rotated on every use. A token
 * that was already used is proof that it leaked: presenting it revokes its whole family, so
 * the legitimate holder's newer token stops working too (OAuth 2.0 Security BCP, RFC 9700
 * section 4.14.2).
 */
export function createRefreshTokens(options: {
  readonly db: Database;
  readonly clock: Clock;
  readonly ttlMs: number;
}) {
  const { db, clock } = options;
  const k = () => db.kysely<AuthTables>();

  const insert = async (
    trx: ReturnType<typeof k>,
    userId: string,
    familyId: string,
    parentId: string | null,
  ): Promise<RotatedRefreshToken> => {
    const id = randomId();
    const secret = randomSecret();
    const now = clock.now();
    const expiresAt = now + options.ttlMs;
    await trx
      .insertInto('auth_refresh_tokens')
      .values({
        id,
        family_id: familyId,
        user_id: userId,
        secret_hash: sha256(secret),
        parent_id: parentId,
        created_at: now,
        expires_at: expiresAt,
        used_at: null,
        revoked_at: null,
      })
      .execute();
    return { token: `${id}.${secret}`, familyId, userId, expiresAt };
  };

  const revokeFamily = async (familyId: string): Promise<number> => {
    const result = await k()
      .updateTable('auth_refresh_tokens')
      .set({ revoked_at: clock.now() })
      .where('family_id', '=', familyId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  };

  const find = async (token: string): Promise<RefreshTokenRow> => {
    const m = FORMAT.exec(token);
    if (m === null) throw revoked('The refresh token is not valid');
    const [, id, secret] = m as unknown as [string, string, string];
    const row = await k()
      .selectFrom('auth_refresh_tokens')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    if (row === undefined || !secretMatches(secret, row.secret_hash))
      throw revoked('The refresh token is not valid');
    return row;
  };

  return {
    /** Starts a new family (a login session). */
    issue(userId: string): Promise<RotatedRefreshToken> {
      return insert(k(), userId, randomId(), null);
    },

    /** Spends `token` and returns its successor; reuse revokes the family. */
    async rotate(token: string, onReuse?: (familyId: string) => void): Promise<RotatedRefreshToken> {
      const row = await find(token);
      const reused = async () => {
        await revokeFamily(row.family_id);
        onReuse?.(row.family_id);
        return revoked('The refresh token was already used; its session is revoked', { reuseDetected: true });
      };
      if (row.revoked_at !== null) throw revoked('The refresh token was revoked');
      if (row.used_at !== null) throw await reused();
      if (row.expires_at <= clock.now()) {
        throw new GatewayError('GW_ERR_AUTH_TOKEN_EXPIRED', { message: 'The refresh token has expired' });
      }
      const next = await db.transaction<RotatedRefreshToken | undefined, AuthTables>(async (trx) => {
        // The conditional update makes two concurrent uses of one token race for one winner.
        const spent = await trx
          .updateTable('auth_refresh_tokens')
          .set({ used_at: clock.now() })
          .where('id', '=', row.id)
          .where('used_at', 'is', null)
          .where('revoked_at', 'is', null)
          .executeTakeFirst();
        if (Number(spent.numUpdatedRows) !== 1) return undefined;
        return insert(trx, row.user_id, row.family_id, row.id);
      });
      if (next === undefined) throw await reused();
      return next;
    },

    /** The family of a token, when the token is genuine (for logout). */
    async familyOf(token: string): Promise<{ familyId: string; userId: string }> {
      const row = await find(token);
      return { familyId: row.family_id, userId: row.user_id };
    },

    revokeFamily,

    /** Revokes every session of a user (password change, disable, delete). */
    async revokeUser(userId: string): Promise<void> {
      await k()
        .updateTable('auth_refresh_tokens')
        .set({ revoked_at: clock.now() })
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .execute();
    },

    /** True when no live token of the family remains (revoked or logged out). */
    async isFamilyRevoked(familyId: string): Promise<boolean> {
      const live = await k()
        .selectFrom('auth_refresh_tokens')
        .select('id')
        .where('family_id', '=', familyId)
        .where('revoked_at', 'is', null)
        .limit(1)
        .executeTakeFirst();
      return live === undefined;
    },
  };
}

/** Refresh-token operations. */
export type RefreshTokens = ReturnType<typeof createRefreshTokens>;
