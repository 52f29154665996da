import assert from 'node:assert/strict';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sql } from 'kysely';
import { silentLogger } from '#core/log';
import { createMetrics, parseExposition, sampleValue } from '#core/metrics';
import { createPostgresDatabase, createSqliteDatabase, type Database } from '#core/storage';
import { isolatedPostgres, requirePostgres } from '#testing/services';
import { type ClosableAuditLog, createAuditLog } from './audit-log.ts';
import { eventHash } from './chain.ts';
import type { AuditEvent, AuditInput } from './port.ts';

interface Fixture extends AsyncDisposable {
  readonly db: Database;
  readonly file: string;
  readonly audit: ClosableAuditLog;
  readonly metrics: ReturnType<typeof createMetrics>;
  /** Another AuditLog on the same database (a second replica) with its own file. */
  replica(): Promise<ClosableAuditLog>;
  advance(ms: number): void;
}

type Opener = () => Promise<{
  db: Database;
  openAnother: () => Promise<Database>;
  cleanup: () => Promise<void>;
}>;

async function fixture(open: Opener): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-audit-'));
  const { db, openAnother, cleanup } = await open();
  let now = Date.parse('2026-01-01T00:00:00.000Z');
  const clock = { now: () => now };
  const metrics = createMetrics({ processMetrics: false });
  const file = join(dir, 'audit.jsonl');
  const audit = await createAuditLog({ db, file, clock, log: silentLogger(), metrics });
  let replicas = 0;
  const logs: ClosableAuditLog[] = [audit];
  return {
    db,
    file,
    audit,
    metrics,
    async replica() {
      replicas += 1;
      const other = await openAnother();
      const log = await createAuditLog({
        db: other,
        file: join(dir, `replica-${replicas}.jsonl`),
        clock,
        log: silentLogger(),
        metrics,
      });
      logs.push(log);
      return log;
    },
    advance: (ms) => {
      now += ms;
    },
    async [Symbol.asyncDispose]() {
      await Promise.all(logs.map((l) => l.close()));
      await cleanup();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Opens databases on one storage with `open` and closes them all, then `remove`s the storage. */
function pooled(open: () => Promise<Database>, remove: () => Promise<void>): ReturnType<Opener> {
  const opened: Database[] = [];
  const openAnother = async () => {
    const db = await open();
    opened.push(db);
    return db;
  };
  return openAnother().then((db) => ({
    db,
    openAnother,
    cleanup: async () => {
      await Promise.all(opened.map((d) => d.close()));
      await remove();
    },
  }));
}

const sqliteOpener: Opener = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-audit-db-'));
  return pooled(
    () => createSqliteDatabase({ file: join(dir, 'gatehouse.db'), busyTimeoutMs: 10_000 }),
    () => rm(dir, { recursive: true, force: true }),
  );
};

const postgres = requirePostgres();
const postgresOpener: Opener = async () => {
  const schema = await isolatedPostgres(postgres.need(), 'audit');
  return pooled(
    () => Promise.resolve(createPostgresDatabase({ url: schema.url, poolSize: 4 })),
    () => schema.drop(),
  );
};

/** What an attacker with DDL rights does first: remove the append-only triggers. */
async function allowTampering(db: Database): Promise<void> {
  if (db.dialect === 'postgres')
    await sql`drop trigger audit_events_no_change on audit_events`.execute(db.kysely());
  else
    for (const t of ['update', 'delete'])
      await sql.raw(`drop trigger audit_events_no_${t}`).execute(db.kysely());
}

async function seed(f: Fixture, n: number): Promise<void> {
  for (let i = 1; i <= n; i++) {
    f.advance(1000);
    await f.audit.record({
      actor: i % 2 === 0 ? 'user:alice' : 'user:bob',
      action: i % 3 === 0 ? 'auth.login' : 'artifacts.upload',
      resource: `artifact:team-${i % 2 === 0 ? 'a' : 'b'}/file-${i}`,
      decision: i % 4 === 0 ? 'deny' : 'allow',
      reason: `reason ${i}`,
      requestId: `req-${i}`,
      clientIp: '127.0.0.1',
      details: { n: i, nested: { z: 1, a: [1, 'two'] } },
    });
  }
}

async function fileLines(f: Fixture): Promise<AuditEvent[]> {
  return (await readFile(f.file, 'utf8'))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as AuditEvent);
}

async function writeLines(f: Fixture, events: readonly AuditEvent[]): Promise<void> {
  await writeFile(f.file, events.map((e) => `${JSON.stringify(e)}\n`).join(''));
}

function suite(name: string, open: Opener, options: { readonly skip?: string } = {}): void {
  void describe(`audit log on ${name}`, options, () => {
    void it('records hash-chained events in the database and the file', async () => {
      await using f = await fixture(open);
      await seed(f, 3);
      const lines = await fileLines(f);
      assert.deepEqual(
        lines.map((e) => e.seq),
        [1, 2, 3],
      );
      assert.equal(lines[0]?.prevHash, '0'.repeat(64));
      assert.equal(lines[1]?.prevHash, lines[0]?.hash);
      assert.equal(lines[2]?.time, '2026-01-01T00:00:03.000Z');
      for (const event of lines) assert.equal(eventHash(event), event.hash);
      const page = await f.audit.query({});
      assert.deepEqual(page.events, lines.toReversed());
      assert.deepEqual(await f.audit.verify(), { ok: true, checked: 3 });
    });

    void it('filters and pages with an opaque cursor', async () => {
      await using f = await fixture(open);
      await seed(f, 12);
      const alice = await f.audit.query({ actor: 'user:alice', limit: 4 });
      assert.deepEqual(
        alice.events.map((e) => e.seq),
        [12, 10, 8, 6],
      );
      assert.ok(alice.nextCursor !== undefined);
      const rest = await f.audit.query({ actor: 'user:alice', limit: 4, cursor: alice.nextCursor });
      assert.deepEqual(
        rest.events.map((e) => e.seq),
        [4, 2],
      );
      assert.equal(rest.nextCursor, undefined);
      assert.deepEqual(
        (await f.audit.query({ decision: 'deny' })).events.map((e) => e.seq),
        [12, 8, 4],
      );
      assert.deepEqual(
        (await f.audit.query({ action: 'auth.login', resource: 'artifact:team-a/' })).events.map(
          (e) => e.seq,
        ),
        [12, 6],
      );
      assert.deepEqual(
        (await f.audit.query({ resource: 'artifact:team-b/file-1' })).events.map((e) => e.seq),
        [11, 1],
      );
      assert.deepEqual(
        (await f.audit.query({ resource: 'artifact:team-%' })).events,
        [],
        'a prefix is literal, not a pattern',
      );
      const window = await f.audit.query({ from: '2026-01-01T00:00:03Z', to: '2026-01-01T00:00:05.000Z' });
      assert.deepEqual(
        window.events.map((e) => e.seq),
        [4, 3],
      );
      await assert.rejects(f.audit.query({ cursor: 'garbage' }), { code: 'GW_ERR_REQUEST_INVALID' });
      await assert.rejects(f.audit.query({ cursor: Buffer.from('{"before":-1}').toString('base64url') }), {
        code: 'GW_ERR_REQUEST_INVALID',
      });
      await assert.rejects(f.audit.query({ from: 'yesterday' }), { code: 'GW_ERR_REQUEST_INVALID' });
      // Only ISO 8601: Date.parse also takes "1" (2001) and "Jan 1 2026 00:00:04" in the server's
      // time zone. A time without an offset is UTC, whatever the server's zone.
      for (const from of ['1', 'Jan 1 2026 00:00:04', '2026-01-01T00:00:04 GMT+1', '01/01/2026'])
        await assert.rejects(f.audit.query({ from }), { code: 'GW_ERR_REQUEST_INVALID' }, from);
      const naive = await f.audit.query({ from: '2026-01-01T00:00:03', to: '2026-01-01 00:00:05' });
      assert.deepEqual(
        naive.events.map((e) => e.seq),
        [4, 3],
      );
      const offset = await f.audit.query({ from: '2026-01-01T01:00:03+01:00', to: '2026-01-01T00:00:05Z' });
      assert.deepEqual(
        offset.events.map((e) => e.seq),
        [4, 3],
      );
    });

    void it('keeps one linear chain under concurrent appends from two replicas', async () => {
      await using f = await fixture(open);
      const other = await f.replica();
      const writes = Array.from({ length: 40 }, (_, i) =>
        (i % 2 === 0 ? f.audit : other).record({
          actor: 'system',
          action: 'test.concurrent',
          resource: `r/${i}`,
          decision: 'info',
        }),
      );
      await Promise.all(writes);
      const all = await f.audit.query({ limit: 100 });
      assert.deepEqual(
        all.events.map((e) => e.seq),
        Array.from({ length: 40 }, (_, i) => 40 - i),
      );
      const verification = await other.verify();
      assert.equal(verification.checked, 40);
      if (f.db.dialect === 'postgres') assert.deepEqual(verification, { ok: true, checked: 40 });
    });

    void it('hashes what it stores, whatever the caller passed in details', async () => {
      await using f = await fixture(open);
      await f.audit.record({
        actor: 'system',
        action: 'x',
        resource: 'y',
        decision: 'info',
        details: { at: new Date(0), gone: undefined, list: [1, undefined] },
      });
      await f.audit.record({
        actor: 'system',
        action: 'x',
        resource: 'y',
        decision: 'info',
        details: { big: 1n },
      });
      const [event] = (await f.audit.query({})).events;
      assert.deepEqual(event?.details, { at: '1970-01-01T00:00:00.000Z', list: [1, null] });
      assert.deepEqual(await f.audit.verify(), { ok: true, checked: 1 });
    });

    void it('stores a copy of a flat event as a JSON round trip gives it, without undefined members', async () => {
      await using f = await fixture(open);
      const input = {
        actor: 'user:alice',
        action: 'kv.Get',
        resource: 'kv:orders',
        decision: 'allow' as const,
        reason: undefined,
        clientIp: '::1',
      };
      // Callers in JavaScript (or spreading a wider type) can pass undefined members.
      const recorded = f.audit.record(input as unknown as AuditInput);
      // The caller's object is not what is queued: changing it now changes nothing stored.
      input.actor = 'user:mallory';
      await recorded;
      const [event] = (await f.audit.query({})).events;
      assert.ok(event !== undefined);
      assert.equal(event.actor, 'user:alice');
      assert.equal(event.clientIp, '::1');
      assert.ok(!('reason' in event));
      assert.deepEqual((await fileLines(f))[0], event);
      assert.deepEqual(await f.audit.verify(), { ok: true, checked: 1 });
    });

    void it('stores a lone surrogate as U+FFFD, hashes what it stores, and verifies', async () => {
      await using f = await fixture(open);
      // Both databases and the JSON file turn an unpaired UTF-16 surrogate into U+FFFD; the
      // hash must be computed on that form, or verify would call the event changed.
      await f.audit.record({ actor: 'user:\ud800', action: 'x', resource: 'y', decision: 'info' });
      await f.audit.record({
        actor: 'system',
        action: 'x',
        resource: 'y',
        decision: 'info',
        details: { name: 'a\udc00b', list: ['\ud83d'] },
      });
      const events = (await f.audit.query({})).events;
      assert.deepEqual(
        events.map((e) => [e.actor, e.details]),
        [
          ['system', { name: 'a\ufffdb', list: ['\ufffd'] }],
          ['user:\ufffd', undefined],
        ],
      );
      assert.deepEqual(await f.audit.verify(), { ok: true, checked: 2 });
    });

    void it('follows its file when it is renamed away or removed (log rotation), within a second', async () => {
      await using f = await fixture(open);
      const one = () => f.audit.record({ actor: 'system', action: 'x', resource: 'y', decision: 'info' });
      await one();
      await one();
      await rename(f.file, `${f.file}.1`);
      f.advance(500);
      await one();
      // Within the second the file held open (now renamed) still receives the events.
      assert.equal((await readFile(`${f.file}.1`, 'utf8')).trim().split('\n').length, 3);
      f.advance(1000);
      await one();
      assert.deepEqual(
        (await fileLines(f)).map((e) => e.seq),
        [4],
        'a new file at the path after the check',
      );
      await rm(f.file);
      f.advance(1000);
      await one();
      assert.deepEqual(
        (await fileLines(f)).map((e) => e.seq),
        [5],
      );
    });

    void it('starts a new line after a record a crash cut short, so the next records stay readable', async () => {
      await using f = await fixture(open);
      await seed(f, 2);
      await f.audit.close();
      // The process died inside the append of record 2: half of its line is in the file.
      const text = await readFile(f.file, 'utf8');
      const cut = text.slice(0, text.indexOf('\n') + 1 + 40);
      await writeFile(f.file, cut);
      const restarted = await createAuditLog({
        db: f.db,
        file: f.file,
        clock: { now: () => Date.parse('2026-01-01T00:01:00.000Z') },
        log: silentLogger(),
        metrics: createMetrics({ processMetrics: false }),
      });
      try {
        await restarted.record({ actor: 'system', action: 'x', resource: 'y', decision: 'info' });
        await restarted.flush();
        const lines = (await readFile(f.file, 'utf8')).split('\n');
        assert.equal(lines[1], cut.split('\n')[1], 'the torn record is left as it was');
        assert.equal((JSON.parse(lines[2] ?? '') as AuditEvent).seq, 3);
        assert.deepEqual((await restarted.verify()).firstBad, {
          seq: 2,
          problem: 'file: line 2 is not JSON',
        });
      } finally {
        await restarted.close();
      }
    });

    void it('never throws into the caller when the database fails, and keeps the event', async () => {
      await using f = await fixture(open);
      await f.db.close();
      await f.audit.record({ actor: 'system', action: 'x', resource: 'y', decision: 'info' });
      let samples = parseExposition((await f.metrics.render()).body);
      assert.equal(sampleValue(samples, 'gatehouse_audit_held_events'), 1);
      await f.audit.close();
      samples = parseExposition((await f.metrics.render()).body);
      assert.equal(sampleValue(samples, 'gatehouse_audit_spooled_events_total'), 1);
      assert.equal(
        sampleValue(samples, 'gatehouse_audit_write_failures_total', { sink: 'database' }),
        undefined,
      );
      const spooled = JSON.parse(await readFile(`${f.file}.pending`, 'utf8')) as {
        input: { action: string };
      };
      assert.equal(spooled.input.action, 'x');
    });
  });

  void describe(`audit verify on ${name} detects tampering`, options, () => {
    const bad = async (f: Fixture) => (await f.audit.verify()).firstBad;

    void it('refuses updates and deletes of events in the database itself', async () => {
      await using f = await fixture(open);
      await seed(f, 2);
      await assert.rejects(
        sql`update audit_events set actor = 'x' where seq = 1`.execute(f.db.kysely()),
        /append-only/,
      );
      await assert.rejects(sql`delete from audit_events where seq = 2`.execute(f.db.kysely()), /append-only/);
      assert.deepEqual(await f.audit.verify(), { ok: true, checked: 2 });
    });

    void it('a changed database row', async () => {
      await using f = await fixture(open);
      await seed(f, 5);
      await allowTampering(f.db);
      await sql`update audit_events set decision = 'allow' where seq = 4`.execute(f.db.kysely());
      assert.deepEqual(await bad(f), {
        seq: 4,
        problem: 'database: hash does not match the content (changed)',
      });
    });

    void it('a removed database row, in the middle and at the end', async () => {
      await using f = await fixture(open);
      await seed(f, 5);
      await allowTampering(f.db);
      await sql`delete from audit_events where seq = 5`.execute(f.db.kysely());
      assert.equal((await bad(f))?.seq, 5);
      await sql`delete from audit_events where seq = 2`.execute(f.db.kysely());
      assert.deepEqual(await bad(f), { seq: 2, problem: 'database: record 2 is missing (removed)' });
    });

    void it('an inserted database row with a valid hash', async () => {
      await using f = await fixture(open);
      await seed(f, 5);
      await allowTampering(f.db);
      const db = f.db.kysely();
      // Renumber 3..5 to 4..6 and forge a well-hashed record 3 that links to record 2.
      for (const seq of [5, 4, 3])
        await sql`update audit_events set seq = ${seq + 1} where seq = ${seq}`.execute(db);
      const [two] = (
        await f.audit.query({ limit: 1, cursor: Buffer.from('{"before":3}').toString('base64url') })
      ).events;
      const forged = {
        seq: 3,
        time: '2026-01-01T00:00:02.500Z',
        actor: 'user:mallory',
        action: 'auth.login',
        resource: 'x',
        decision: 'allow' as const,
        prevHash: two?.hash ?? '',
      };
      const hash = eventHash(forged);
      await sql`insert into audit_events (seq, time, actor, action, resource, decision, prev_hash, hash) values (3, ${forged.time}, ${forged.actor}, ${forged.action}, 'x', 'allow', ${forged.prevHash}, ${hash})`.execute(
        db,
      );
      const found = await bad(f);
      assert.equal(found?.seq, 4);
      assert.match(found?.problem ?? '', /^database: .*(changed|inserted)/);
    });

    void it('a changed, a removed and an inserted line of the file', async () => {
      await using f = await fixture(open);
      await seed(f, 5);
      const lines = await fileLines(f);
      assert.deepEqual(await f.audit.verify(), { ok: true, checked: 5 });
      await writeLines(
        f,
        lines.map((e) => (e.seq === 3 ? { ...e, actor: 'user:nobody' } : e)),
      );
      assert.deepEqual(await bad(f), { seq: 3, problem: 'file: hash does not match the content (changed)' });
      const rehashed = lines.map((e) =>
        e.seq === 3 ? { ...e, actor: 'user:nobody', hash: eventHash({ ...e, actor: 'user:nobody' }) } : e,
      );
      await writeLines(f, rehashed);
      assert.equal(
        (await bad(f))?.seq,
        3,
        'a re-hashed change breaks the link to the next line or the database copy',
      );
      await writeLines(
        f,
        lines.filter((e) => e.seq !== 2),
      );
      if (f.db.dialect === 'sqlite')
        assert.deepEqual(await bad(f), { seq: 2, problem: 'file: record 2 is missing (removed)' });
      const extra = { ...lines[1], seq: 99 } as AuditEvent;
      await writeLines(f, [...lines, { ...extra, hash: eventHash(extra) }]);
      assert.deepEqual(await bad(f), {
        seq: 99,
        problem: 'file: record is not in the database (removed there, or inserted here)',
      });
      await writeLines(f, lines);
      assert.deepEqual(await f.audit.verify(), { ok: true, checked: 5 });
    });
  });
}

suite('SQLite', sqliteOpener);
suite('PostgreSQL', postgresOpener, postgres.options);
