import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Database } from '#core/storage';
import { chainProblem, GENESIS_HASH } from './chain.ts';
import type { AuditEvent, AuditVerification } from './port.ts';
import { type AuditTables, rowToEvent } from './rows.ts';

const BATCH = 1000;

type Bad = { readonly seq: number; readonly problem: string };

async function* databaseEvents(db: Database): AsyncGenerator<AuditEvent> {
  let after = 0;
  for (;;) {
    const rows = await db
      .kysely<AuditTables>()
      .selectFrom('audit_events')
      .selectAll()
      .where('seq', '>', after)
      .orderBy('seq', 'asc')
      .limit(BATCH)
      .execute();
    for (const row of rows) yield rowToEvent(row);
    const last = rows.at(-1);
    if (last === undefined || rows.length < BATCH) return;
    after = Number(last.seq);
  }
}

/** Walks the database chain from the genesis record, then checks the head row agrees with the end. */
async function verifyDatabase(db: Database): Promise<{ checked: number; lastSeq: number; bad?: Bad }> {
  let expected = { seq: 1, prevHash: GENESIS_HASH };
  let checked = 0;
  for await (const event of databaseEvents(db)) {
    checked += 1;
    const problem = chainProblem(event, expected);
    if (problem !== undefined)
      return {
        checked,
        lastSeq: event.seq,
        bad: { seq: Math.min(event.seq, expected.seq), problem: `database: ${problem}` },
      };
    expected = { seq: event.seq + 1, prevHash: event.hash };
  }
  const head = await db
    .kysely<AuditTables>()
    .selectFrom('audit_head')
    .select(['seq', 'hash'])
    .where('id', '=', 1)
    .executeTakeFirst();
  const lastSeq = expected.seq - 1;
  if (head === undefined || Number(head.seq) !== lastSeq || head.hash !== expected.prevHash) {
    const headSeq = head === undefined ? 0 : Number(head.seq);
    const problem =
      headSeq > lastSeq
        ? `record ${lastSeq + 1} is missing (removed at the end)`
        : 'chain head does not match the last record';
    return {
      checked,
      lastSeq,
      bad: { seq: Math.min(headSeq, lastSeq + 1), problem: `database: ${problem}` },
    };
  }
  return { checked, lastSeq };
}

async function* fileEvents(file: string): AsyncGenerator<AuditEvent | { readonly malformed: number }> {
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let n = 0;
  for await (const line of lines) {
    n += 1;
    if (line === '') continue;
    try {
      yield JSON.parse(line) as AuditEvent;
    } catch {
      yield { malformed: n };
    }
  }
}

async function databaseHashes(db: Database, seqs: readonly number[]): Promise<Map<number, string>> {
  if (seqs.length === 0) return new Map();
  const rows = await db
    .kysely<AuditTables>()
    .selectFrom('audit_events')
    .select(['seq', 'hash'])
    .where('seq', 'in', seqs)
    .execute();
  return new Map(rows.map((r) => [Number(r.seq), r.hash]));
}

/**
 * Checks the JSONL file: each line must hash correctly, link to the line before when their
 * sequence numbers are adjacent, and equal the database record of the same number. With
 * `complete`, the file must also hold every record (one writer, embedded mode); with several
 * replicas each file holds only its own writer's records.
 */
async function verifyFile(
  db: Database,
  file: string,
  complete: boolean,
  lastSeq: number,
): Promise<Bad | undefined> {
  const exists = await access(file).then(
    () => true,
    () => false,
  );
  if (!exists)
    return complete && lastSeq > 0 ? { seq: 1, problem: 'file: the audit file is missing' } : undefined;
  let previous: AuditEvent | undefined;
  let batch: AuditEvent[] = [];
  // Lines are checked in order, each against the database first and then against the line
  // before, so that a re-hashed change is reported at its own number, not at the next one.
  const check = async (): Promise<Bad | undefined> => {
    const stored = await databaseHashes(
      db,
      batch.map((e) => e.seq),
    );
    for (const event of batch) {
      const hash = stored.get(event.seq);
      if (hash === undefined)
        return {
          seq: event.seq,
          problem: 'file: record is not in the database (removed there, or inserted here)',
        };
      if (hash !== event.hash)
        return { seq: event.seq, problem: 'file: record differs from the database (changed)' };
      const bad = linkProblem(event, previous, complete);
      if (bad !== undefined) return bad;
      previous = event;
    }
    batch = [];
    return undefined;
  };
  for await (const item of fileEvents(file)) {
    if ('malformed' in item) {
      const bad = await check();
      return bad ?? { seq: (previous?.seq ?? 0) + 1, problem: `file: line ${item.malformed} is not JSON` };
    }
    batch.push(item);
    if (batch.length >= BATCH) {
      const bad = await check();
      if (bad !== undefined) return bad;
    }
  }
  const bad = await check();
  if (bad !== undefined) return bad;
  const fileLast = previous?.seq ?? 0;
  if (complete && fileLast < lastSeq)
    return { seq: fileLast + 1, problem: `file: record ${fileLast + 1} is missing (removed)` };
  return undefined;
}

/** Checks one line's hash and, when it must follow the line before, its link. */
function linkProblem(
  event: AuditEvent,
  previous: AuditEvent | undefined,
  complete: boolean,
): Bad | undefined {
  const expectedSeq = (previous?.seq ?? 0) + 1;
  if (previous !== undefined && event.seq <= previous.seq)
    return { seq: event.seq, problem: 'file: records out of order (inserted)' };
  const linked = complete || event.seq === expectedSeq;
  const expected = linked
    ? { seq: expectedSeq, prevHash: previous?.hash ?? GENESIS_HASH }
    : { seq: event.seq, prevHash: event.prevHash };
  const problem = chainProblem(event, expected);
  return problem === undefined
    ? undefined
    : { seq: Math.min(event.seq, expected.seq), problem: `file: ${problem}` };
}

/** Verifies the database chain and the JSONL file; reports the first bad sequence number and why. */
export async function verifyAudit(
  db: Database,
  file: string,
  options: { readonly fileComplete: boolean },
): Promise<AuditVerification> {
  const database = await verifyDatabase(db);
  if (database.bad !== undefined) return { ok: false, checked: database.checked, firstBad: database.bad };
  const fileBad = await verifyFile(db, file, options.fileComplete, database.lastSeq);
  if (fileBad !== undefined) return { ok: false, checked: database.checked, firstBad: fileBad };
  return { ok: true, checked: database.checked };
}
