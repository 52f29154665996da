import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createPostgresDatabase, createSqliteDatabase, type Database } from '#core/storage';
import { isolatedPostgres, requirePostgres } from '#testing/services';
import { createRefreshTokens } from './refresh-tokens.ts';
import { AUTH_MIGRATIONS } from './tables.ts';
import { manualClock, rejectsWith } from './test-support.ts';

const DAY = 86_400_000;

function suite(
  name: string,
  open: () => Promise<{ db: Database; close: () => Promise<void> }>,
  options = {},
) {
  void describe(`refresh tokens on ${name}`, options, () => {
    const withTokens = async (
      fn: (t: ReturnType<typeof createRefreshTokens>, clock: ReturnType<typeof manualClock>) => Promise<void>,
    ) => {
      const { db, close } = await open();
      try {
        await db.migrate({ module: 'core-auth', migrations: AUTH_MIGRATIONS });
        const clock = manualClock();
        await fn(createRefreshTokens({ db, clock, ttlMs: 7 * DAY }), clock);
      } finally {
        await close();
      }
    };

    void it('lets exactly one of two concurrent uses of a token win, then revokes the family', async () => {
      await withTokens(async (tokens) => {
        const first = await tokens.issue('u1');
        const results = await Promise.allSettled([tokens.rotate(first.token), tokens.rotate(first.token)]);
        const won = results.filter((r) => r.status === 'fulfilled');
        const lost = results.filter((r) => r.status === 'rejected');
        assert.equal(won.length, 1);
        assert.equal(lost.length, 1);
        assert.equal((lost[0] as PromiseRejectedResult).reason.code, 'GW_ERR_AUTH_TOKEN_REVOKED');
        const winner = (won[0] as PromiseFulfilledResult<{ token: string }>).value;
        await rejectsWith(tokens.rotate(winner.token), 'GW_ERR_AUTH_TOKEN_REVOKED');
        assert.equal(await tokens.isFamilyRevoked(first.familyId), true);
      });
    });

    void it('keeps families apart, expires tokens and revokes all sessions of a user', async () => {
      await withTokens(async (tokens, clock) => {
        const a = await tokens.issue('u1');
        const b = await tokens.issue('u1');
        const c = await tokens.issue('u2');
        const a2 = await tokens.rotate(a.token);
        let reused = '';
        await rejectsWith(
          tokens.rotate(a.token, (family) => {
            reused = family;
          }),
          'GW_ERR_AUTH_TOKEN_REVOKED',
          /already used/,
        );
        assert.equal(reused, a.familyId);
        await rejectsWith(tokens.rotate(a2.token), 'GW_ERR_AUTH_TOKEN_REVOKED', /revoked/);
        const b2 = await tokens.rotate(b.token);
        clock.advance(7 * DAY);
        await rejectsWith(tokens.rotate(b2.token), 'GW_ERR_AUTH_TOKEN_EXPIRED');
        await tokens.revokeUser('u2');
        await rejectsWith(tokens.rotate(c.token), 'GW_ERR_AUTH_TOKEN_REVOKED');
        await rejectsWith(tokens.familyOf('nonsense'), 'GW_ERR_AUTH_TOKEN_REVOKED');
      });
    });
  });
}

suite('sqlite', async () => {
  const db = await createSqliteDatabase({ file: ':memory:' });
  return { db, close: () => db.close() };
});

const pg = requirePostgres();
suite(
  'postgres',
  async () => {
    const schema = await isolatedPostgres(pg.need(), 'auth');
    const db = createPostgresDatabase({ url: schema.url });
    return {
      db,
      close: async () => {
        await db.close();
        await schema.drop();
      },
    };
  },
  pg.options,
);
