import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Client } from 'pg';
import { type IsolatedPostgres, isolatedPostgres, requirePostgres } from '#testing/services';
import { keyHint, signStream } from '../../../src/doors/artifacts/index.ts';
import { type DoorHarness, startDoor } from './harness.ts';

const postgres = requirePostgres();
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/** Polls `check` (a database state, not a timing) until it holds; fails after ten seconds. */
async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i += 1) {
    if (await check()) return;
    await delay(20);
  }
  assert.fail(`Timed out waiting until ${what}`);
}

async function* halted(body: Buffer, gate: Promise<void>): AsyncGenerator<Uint8Array> {
  yield body.subarray(0, body.length >> 1);
  await gate;
  yield body.subarray(body.length >> 1);
}

/** Counts the door's statements matching `pattern` (ILIKE) that wait on a lock, seen from `holder`. */
async function waitingOn(holder: Client, schema: IsolatedPostgres, pattern: string): Promise<number> {
  // Inside a transaction pg_stat_activity keeps its first snapshot: clear it on every look.
  const found = await holder.query(
    "SELECT 1 FROM pg_stat_clear_snapshot(), pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND query ILIKE $2",
    [schema.applicationName, pattern],
  );
  return found.rowCount ?? 0;
}

/**
 * Starts uploads whose bodies stop halfway until a second connection holds their pending rows,
 * then lets them finish: each commit transaction stops at its last statement (removing its
 * pending row), its work done and nothing committed, until `release()`. `waiting(pattern)`
 * counts the door's statements matching `pattern` (ILIKE) that wait on a lock.
 */
async function heldUploads(
  h: DoorHarness,
  schema: IsolatedPostgres,
  uploads: readonly { readonly path: string; readonly body: Buffer }[],
) {
  const holder = new Client({ connectionString: schema.url });
  await holder.connect();
  let open = true;
  const release = async () => {
    if (!open) return;
    open = false;
    try {
      await holder.query('COMMIT');
    } finally {
      await holder.end();
    }
  };
  try {
    const gate = Promise.withResolvers<void>();
    const responses = uploads.map(({ path, body }) =>
      h.call('publisher', 'POST', path, halted(body, gate.promise), {
        'content-length': String(body.length),
      }),
    );
    await until(
      `${uploads.length} uploads have pending rows`,
      async () => (await holder.query('SELECT 1 FROM artifacts_pending')).rowCount === uploads.length,
    );
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM artifacts_pending FOR UPDATE');
    gate.resolve();
    const waiting = (pattern: string) => waitingOn(holder, schema, pattern);
    await until(
      'the first upload commit waits on its pending row',
      async () => (await waiting('delete from "artifacts_pending"%')) > 0,
    );
    return { responses, waiting, release, [Symbol.asyncDispose]: release };
  } catch (error) {
    await release();
    throw error;
  }
}

/**
 * The door's own SQL on PostgreSQL, the scale-out database: the upload commit, the scan queue's
 * leases, verdicts, list paging, repository summaries (aggregates come back as strings there),
 * download tickets and deletion. The other integration tests run the same paths on SQLite.
 */
void describe('artifacts door on PostgreSQL', postgres.options, () => {
  void it('uploads, scans, lists, summarises, downloads by ticket and deletes', async () => {
    await using schema = await isolatedPostgres(postgres.need(), 'artifacts');
    await using h = await startDoor({ quotas: { team: 10_000_000 } }, undefined, { postgresUrl: schema.url });
    const bodies = [randomBytes(70_000), randomBytes(10_000), randomBytes(40_000)];
    const ids: string[] = [];
    for (const [i, body] of bodies.entries()) {
      const sha = createHash('sha256').update(body).digest('hex');
      const up = await h.call(
        'publisher',
        'POST',
        `/api/artifacts?repository=team&name=p${i}&version=1&sha256=${sha}`,
        body,
      );
      assert.equal(up.status, 201, up.body.toString());
      ids.push(String(up.json()['id']));
    }
    // Same content again: stored once.
    const again = await h.call(
      'publisher',
      'POST',
      '/api/artifacts?repository=team&name=copy&version=1',
      bodies[0],
    );
    assert.equal(again.json()['deduplicated'], true);
    await h.door.scanQueue().drain();
    const first = (await h.call('consumer', 'GET', `/api/artifacts/${ids[0]}`)).json();
    assert.equal(first['status'], 'approved');
    assert.equal(first['scanState'], 'done');
    assert.equal(first['size'], 70_000);

    const page = (
      await h.call('consumer', 'GET', '/api/artifacts?sort=size&order=desc&limit=2&offset=1')
    ).json();
    assert.equal(page['total'], 4);
    // Sizes 70 000 (p0 and its copy, tied: ordered by id), 40 000 (p2), 10 000 (p1).
    const names = (page['items'] as { name: string }[]).map((i) => i.name);
    assert.equal(names.length, 2);
    assert.ok(names[0] === 'p0' || names[0] === 'copy', names.join());
    assert.equal(names[1], 'p2');
    const [team] = (await h.call('consumer', 'GET', '/api/artifacts/-/repositories')).json()[
      'repositories'
    ] as Record<string, unknown>[];
    assert.deepEqual(
      {
        name: team?.['name'],
        artifacts: team?.['artifacts'],
        size: team?.['size'],
        approved: team?.['approved'],
      },
      { name: 'team', artifacts: 4, size: 190_000, approved: 4 },
    );

    const issued = await h.call('consumer', 'POST', `/api/artifacts/${ids[1]}/download-tickets`);
    assert.equal(issued.status, 201);
    const form = new URLSearchParams({ ticket: String(issued.json()['ticket']) }).toString();
    const got = await h.call('anonymous', 'POST', `/api/artifacts/${ids[1]}/download`, form, FORM);
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, bodies[1]);
    assert.equal(
      (await h.call('anonymous', 'POST', `/api/artifacts/${ids[1]}/download`, form, FORM)).status,
      401,
    );

    const ranged = await h.call('consumer', 'GET', `/api/artifacts/${ids[2]}/download`, undefined, {
      range: 'bytes=100-199',
    });
    assert.equal(ranged.status, 206);
    assert.deepEqual(ranged.body, bodies[2]?.subarray(100, 200));

    assert.equal((await h.call('admin', 'DELETE', `/api/artifacts/${ids[0]}`)).status, 204);
    const [deleted] = (await h.core.audit.query({ action: 'artifacts.delete' })).events;
    assert.equal(deleted?.details?.['shredded'], false, 'the copy still holds the content');
    assert.equal((await h.call('consumer', 'GET', '/api/artifacts')).json()['total'], 3);
  });

  void it('stores concurrent uploads of the same bytes under different names once, none refused', async () => {
    await using schema = await isolatedPostgres(postgres.need(), 'artifacts');
    await using h = await startDoor({}, undefined, { postgresUrl: schema.url });
    // Both commits looked the digest up before either inserted it; the second insert then failed
    // on the digest key and the upload was refused as GW_ERR_ARTIFACTS_ALREADY_EXISTS.
    for (let round = 0; round < 6; round += 1) {
      const body = randomBytes(100_000);
      const ups = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          h.call('publisher', 'POST', `/api/artifacts?repository=team&name=c${round}-${i}&version=1`, body),
        ),
      );
      assert.deepEqual(
        ups.map((u) => (u.status === 201 ? 201 : String(u.json()['code']))),
        [201, 201, 201, 201, 201, 201],
        `round ${round}`,
      );
      assert.equal(ups.filter((u) => u.json()['deduplicated'] === false).length, 1, `round ${round}`);
      for (const u of ups) {
        const got = await h.call('admin', 'GET', `/api/artifacts/${String(u.json()['id'])}/download`);
        assert.equal(got.status, 200);
        assert.deepEqual(got.body, body);
      }
    }
  });
  void it('keeps the stored blob when a delete races an upload linking the same content', async () => {
    await using schema = await isolatedPostgres(postgres.need(), 'artifacts');
    await using h = await startDoor({}, undefined, { postgresUrl: schema.url });
    const body = randomBytes(100_000);
    const first = await h.call(
      'publisher',
      'POST',
      '/api/artifacts?repository=team&name=old&version=1',
      body,
    );
    assert.equal(first.status, 201);
    // A second connection holds the new upload's pending row, so its commit transaction stops
    // at its last statement, after it linked its artifact to the stored blob. The delete of the
    // only other artifact then runs: it used to see no other reference (the upload's is not
    // committed), delete the blob row and file, and the upload committed an artifact whose
    // content was gone ("No stored blob").
    await using held = await heldUploads(h, schema, [
      { path: '/api/artifacts?repository=team&name=new&version=1', body },
    ]);
    let deleted = false;
    const removal = h.call('admin', 'DELETE', `/api/artifacts/${String(first.json()['id'])}`).then((res) => {
      deleted = true;
      return res;
    });
    await until(
      'the delete finished or waits on the blob row',
      async () => deleted || (await held.waiting('%"artifacts_blobs"%for update%')) === 1,
    );
    await held.release();
    const [up, del] = await Promise.all([...held.responses, removal]);
    assert.equal(up?.status, 201, up?.body.toString());
    assert.equal(del?.status, 204);
    const got = await h.call('admin', 'GET', `/api/artifacts/${String(up?.json()['id'])}/download`);
    assert.equal(got.status, 200, got.body.toString());
    assert.deepEqual(got.body, body);
  });

  void it('deletes a version while the same version and bytes are published again, without a deadlock', async () => {
    await using schema = await isolatedPostgres(postgres.need(), 'artifacts');
    await using h = await startDoor({}, undefined, { postgresUrl: schema.url });
    const body = randomBytes(100_000);
    const path = '/api/artifacts?repository=team&name=app&version=1';
    const holder = new Client({ connectionString: schema.url });
    await holder.connect();
    try {
      // The new upload passes its "already exists" check and stops halfway through its body;
      // another upload of the same version and bytes is stored meanwhile (the one deleted below).
      const gate = Promise.withResolvers<void>();
      const upload = h.call('publisher', 'POST', path, halted(body, gate.promise), {
        'content-length': String(body.length),
      });
      await until(
        'the upload has a pending row',
        async () => (await holder.query('SELECT 1 FROM artifacts_pending')).rowCount === 1,
      );
      const first = await h.call('publisher', 'POST', path, body);
      assert.equal(first.status, 201, first.body.toString());
      const id = String(first.json()['id']);
      await h.door.scanQueue().drain();
      // A second connection holds the old artifact's scan report: the delete stops there.
      await holder.query('BEGIN');
      const report = await holder.query(
        'SELECT 1 FROM artifacts_scan_reports WHERE artifact_id = $1 FOR UPDATE',
        [id],
      );
      assert.equal(report.rowCount, 1);
      const removal = h.call('admin', 'DELETE', `/api/artifacts/${id}`);
      await until(
        'the delete waits on the scan report',
        async () => (await waitingOn(holder, schema, 'delete from "artifacts_scan_reports"%')) === 1,
      );
      gate.resolve();
      await until(
        'the upload commit waits on a lock',
        async () => (await waitingOn(holder, schema, 'insert into%')) === 1,
      );
      // The delete used to remove the artifact row first and lock the blob row after; the upload
      // locked the blob row and then waited on the deleted row's (repository, name, version)
      // entry, and PostgreSQL aborted one of them as a deadlock (500). Both now take the blob row
      // first: the upload waits there.
      assert.equal(await waitingOn(holder, schema, 'insert into "artifacts_blobs"%'), 1);
      await holder.query('COMMIT');
      const [up, del] = await Promise.all([upload, removal]);
      assert.equal(del.status, 204, del.body.toString());
      assert.equal(up.status, 201, up.body.toString());
      assert.equal(up.json()['deduplicated'], false, 'the delete removed the old blob');
      const got = await h.call('admin', 'GET', `/api/artifacts/${String(up.json()['id'])}/download`);
      assert.equal(got.status, 200, got.body.toString());
      assert.deepEqual(got.body, body);
    } finally {
      await holder.end();
    }
  });

  void it('lets parallel uploads into a repository store at most its quota', async () => {
    await using schema = await isolatedPostgres(postgres.need(), 'artifacts');
    await using h = await startDoor({ quotas: { team: 150_000 } }, undefined, { postgresUrl: schema.url });
    // Three uploads of 100 000 bytes each pass the check before streaming; their commits are
    // held at their last statement. Each commit used to count the usage before the others
    // committed, and all three were stored (300 000 bytes for a quota of 150 000).
    await using held = await heldUploads(
      h,
      schema,
      [0, 1, 2].map((i) => ({
        path: `/api/artifacts?repository=team&name=q${i}&version=1`,
        body: randomBytes(100_000),
      })),
    );
    await until('every upload commit waits on a lock', async () => (await held.waiting('%')) === 3);
    await held.release();
    const ups = await Promise.all(held.responses);
    assert.deepEqual(
      ups
        .map((u) => (u.status === 201 ? '201' : `${u.status} ${String(u.json()['code'])}`))
        .toSorted((a, b) => a.localeCompare(b)),
      ['201', '507 GW_ERR_ARTIFACTS_QUOTA_EXCEEDED', '507 GW_ERR_ARTIFACTS_QUOTA_EXCEEDED'],
    );
    const team = (
      (await h.call('admin', 'GET', '/api/artifacts/-/repositories')).json()['repositories'] as Record<
        string,
        unknown
      >[]
    ).find((r) => r['name'] === 'team');
    assert.deepEqual(
      { artifacts: team?.['artifacts'], size: team?.['size'] },
      { artifacts: 1, size: 100_000 },
    );
  });
  void it('lets a replica serve an artifact signed through another one at once, and not one whose signatures are gone', async () => {
    await using schema = await isolatedPostgres(postgres.need(), 'artifacts');
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const publicKey = key.publicKey.export({ format: 'pem', type: 'spki' }).toString();
    const shared = mkdtempSync(join(tmpdir(), 'gh-art-replicas-'));
    // Two replicas as in the scale-out setup: one database, one blob store, one master key.
    const raw = {
      trust: { mode: 'require', keys: [{ id: 'release', publicKey }] },
      blobStore: { kind: 'fs', path: shared },
      encryption: { activeKey: 'k1', keys: [{ id: 'k1', secret: '11'.repeat(32) }] },
    };
    await using a = await startDoor(raw, undefined, { postgresUrl: schema.url });
    await using b = await startDoor(raw, undefined, { postgresUrl: schema.url });
    try {
      const body = randomBytes(5000);
      const up = await a.call('publisher', 'POST', '/api/artifacts?repository=team&name=r&version=1', body);
      const id = String(up.json()['id']);
      await until(
        'the scan approved it',
        async () => (await a.call('admin', 'GET', `/api/artifacts/${id}`)).json()['status'] === 'approved',
      );
      // Replica B refuses it unsigned (and remembered that verdict for ten minutes).
      assert.equal((await b.call('consumer', 'GET', `/api/artifacts/${id}/download`)).status, 403);
      const signed = JSON.stringify(
        await signStream(Readable.from([body]), key.privateKey, { hint: keyHint(key.publicKey) }),
      );
      const json = { 'content-type': 'application/json' };
      assert.equal(
        (await a.call('publisher', 'POST', `/api/artifacts/${id}/signatures`, signed, json)).status,
        201,
      );
      const down = await b.call('consumer', 'GET', `/api/artifacts/${id}/download`);
      assert.equal(down.status, 200, down.body.toString());
      // Deleted through A and the same bytes published again: B must not trust them on the
      // signatures that went with the deleted artifact.
      assert.equal((await a.call('admin', 'DELETE', `/api/artifacts/${id}`)).status, 204);
      const again = await a.call(
        'publisher',
        'POST',
        '/api/artifacts?repository=team&name=r&version=2',
        body,
      );
      const next = String(again.json()['id']);
      await until(
        'the scan approved it again',
        async () => (await a.call('admin', 'GET', `/api/artifacts/${next}`)).json()['status'] === 'approved',
      );
      assert.equal((await b.call('consumer', 'GET', `/api/artifacts/${next}/download`)).status, 403);
    } finally {
      rmSync(shared, { recursive: true, force: true });
    }
  });
});
