import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Principal } from '#core/rbac';
import { issueTicket, purgeTickets, redeemTicket, TICKET_TTL_MS } from './download-tickets.ts';
import { createTestContext } from './test-context.ts';

const carol: Principal = {
  id: 'user:carol',
  kind: 'user',
  name: 'carol',
  bindings: [{ role: 'consumer', namespace: 'team' }],
};
const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';

const code = (expected: string) => (error: unknown) => (error as { code?: string }).code === expected;

void describe('download tickets', () => {
  void it('redeem once, for its artifact, from its address, before it expires', async () => {
    await using t = await createTestContext();
    let now = 1_000_000;
    const ctx = { ...t.ctx, clock: { now: () => now } };
    const first = await issueTicket(ctx, A, carol, '127.0.0.1');
    assert.equal(first.expiresAt, now + TICKET_TTL_MS);
    assert.match(first.ticket, /^[A-Za-z0-9_-]{43}$/);
    const stored = await t.db
      .kysely<Record<string, Record<string, unknown>>>()
      .selectFrom('artifacts_download_tickets')
      .selectAll()
      .execute();
    assert.equal(stored.length, 1);
    assert.ok(!JSON.stringify(stored).includes(first.ticket), 'only the hash is stored');

    assert.deepEqual(await redeemTicket(ctx, first.ticket, A, '127.0.0.1'), carol);
    await assert.rejects(redeemTicket(ctx, first.ticket, A, '127.0.0.1'), code('GW_ERR_AUTH_TOKEN_INVALID'));

    // A wrong artifact or address spends the ticket too: it is never worth a second try.
    const other = await issueTicket(ctx, A, carol, '127.0.0.1');
    await assert.rejects(redeemTicket(ctx, other.ticket, B, '127.0.0.1'), /another artifact/);
    await assert.rejects(redeemTicket(ctx, other.ticket, A, '127.0.0.1'), /already used/);
    const moved = await issueTicket(ctx, A, carol, '127.0.0.1');
    await assert.rejects(redeemTicket(ctx, moved.ticket, A, '127.0.0.2'), /another address/);

    const late = await issueTicket(ctx, A, carol, '127.0.0.1');
    now += TICKET_TTL_MS;
    await assert.rejects(redeemTicket(ctx, late.ticket, A, '127.0.0.1'), code('GW_ERR_AUTH_TOKEN_EXPIRED'));
    await assert.rejects(redeemTicket(ctx, 'not a ticket', A, '127.0.0.1'), /malformed/);
  });

  void it('purges expired tickets and keeps live ones', async () => {
    await using t = await createTestContext();
    let now = 5_000_000;
    const ctx = { ...t.ctx, clock: { now: () => now } };
    await issueTicket(ctx, A, carol, '127.0.0.1');
    now += TICKET_TTL_MS / 2;
    const live = await issueTicket(ctx, A, carol, '127.0.0.1');
    now += TICKET_TTL_MS / 2;
    assert.equal(await purgeTickets(ctx), 1);
    assert.deepEqual(await redeemTicket(ctx, live.ticket, A, '127.0.0.1'), carol);
  });

  void it('lets exactly one of two racing redemptions win', async () => {
    await using t = await createTestContext();
    const { ticket } = await issueTicket(t.ctx, A, carol, '127.0.0.1');
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, () => redeemTicket(t.ctx, ticket, A, '127.0.0.1')),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  });
});
