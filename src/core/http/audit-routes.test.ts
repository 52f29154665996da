import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sql } from 'kysely';
import { type AuditEvent, createAuditLog } from '#core/audit';
import { silentLogger } from '#core/log';
import { createSqliteDatabase } from '#core/storage';
import { registerAuditRoutes } from './audit-routes.ts';
import { startTestServer } from './test-fixtures.ts';

async function setup() {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-audit-routes-'));
  const db = await createSqliteDatabase({ file: join(dir, 'gatehouse.db') });
  let audit!: Awaited<ReturnType<typeof createAuditLog>>;
  const t = await startTestServer({}, (server) => {
    registerAuditRoutes(server, {
      record: (e) => audit.record(e),
      query: (q) => audit.query(q),
      verify: () => audit.verify(),
    });
  });
  audit = await createAuditLog({
    db,
    file: join(dir, 'audit.jsonl'),
    clock: { now: () => Date.now() },
    log: silentLogger(),
    metrics: t.metrics,
  });
  t.server.setAudit(audit);
  return {
    t,
    db,
    audit,
    async [Symbol.asyncDispose]() {
      await t[Symbol.asyncDispose]();
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const get = async (url: string, headers: Record<string, string> = {}) => {
  const response = await fetch(url, { headers });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};

void describe('audit routes', () => {
  void it('lets auditors and admins page through events and refuses everyone else', async () => {
    await using s = await setup();
    for (let i = 0; i < 3; i++)
      await s.audit.record({
        actor: 'user:alice',
        action: 'auth.login',
        resource: 'user:alice',
        decision: 'allow',
      });
    const base = `${s.t.url}/api/audit-logs`;
    const page = await get(`${base}?actor=user:alice&limit=2`, { 'x-api-key': 'k_auditor' });
    assert.equal(page.status, 200);
    assert.deepEqual(
      (page.body['events'] as AuditEvent[]).map((e) => e.seq),
      [3, 2],
    );
    const next = await get(`${base}?actor=user:alice&limit=2&cursor=${String(page.body['nextCursor'])}`, {
      authorization: 'Bearer admin-token',
    });
    assert.deepEqual(
      (next.body['events'] as AuditEvent[]).map((e) => e.seq),
      [1],
    );
    assert.equal((await get(base)).status, 401);
    const denied = await get(base, { authorization: 'Bearer consumer-token' });
    assert.equal(denied.status, 403);
    // The denial itself is in the trail, with the request's id and address.
    const trail = await s.audit.query({ decision: 'deny' });
    assert.deepEqual(
      trail.events.map((e) => [e.actor, e.action, e.resource, e.clientIp]),
      [['user:carol', 'audit:read', 'audit', '127.0.0.1']],
    );
    const invalid = await get(`${base}?decision=maybe`, { 'x-api-key': 'k_auditor' });
    assert.equal(invalid.status, 400);
    assert.equal(invalid.body['code'], 'GW_ERR_REQUEST_INVALID');
    assert.equal((await get(`${base}?cursor=nope`, { 'x-api-key': 'k_auditor' })).status, 400);
  });

  void it('reports verification, and a broken chain as GW_ERR_AUDIT_CHAIN_BROKEN naming the record', async () => {
    await using s = await setup();
    for (let i = 0; i < 4; i++)
      await s.audit.record({ actor: 'system', action: 'test', resource: `r/${i}`, decision: 'info' });
    const url = `${s.t.url}/api/audit-logs/verify`;
    assert.deepEqual((await get(url, { 'x-api-key': 'k_auditor' })).body, { ok: true, checked: 4 });
    assert.equal((await get(url, { authorization: 'Bearer consumer-token' })).status, 403);
    // Tampering needs DDL first: the table refuses updates through its append-only trigger.
    await sql`drop trigger audit_events_no_update`.execute(s.db.kysely());
    await sql`update audit_events set actor = 'user:mallory' where seq = 2`.execute(s.db.kysely());
    const broken = await get(url, { 'x-api-key': 'k_auditor' });
    assert.equal(broken.status, 500);
    assert.equal(broken.body['code'], 'GW_ERR_AUDIT_CHAIN_BROKEN');
    assert.deepEqual(broken.body['firstBad'], {
      seq: 2,
      problem: 'database: hash does not match the content (changed)',
    });
  });
});
