import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createPostgresDatabase, createSqliteDatabase, type Database } from '#core/storage';
import { isolatedPostgres, requirePostgres } from '#testing/services';
import { vulndbConfigSchema } from './config.ts';
import { VulnerabilityDatabase } from './database.ts';
import { validateRaw } from '#core/config';
import type { OsvRecord } from './osv.ts';

const DAY = 86_400_000;
let now = Date.parse('2026-11-20T00:00:00Z');
const clock = { now: () => now };

const record = (id: string, modified: string, name: string, events: object[], ecosystem = 'npm'): OsvRecord =>
  ({
    id,
    modified,
    summary: `Issue ${id}`,
    aliases: [`CVE-${id}`],
    database_specific: { severity: 'HIGH' },
    affected: [{ package: { ecosystem, name }, ranges: [{ type: 'ECOSYSTEM', events }] }],
  }) as OsvRecord;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vulndb-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeExport(
  name: string,
  records: readonly (OsvRecord | string)[],
): Promise<{ folder: string; zip: string }> {
  const folder = join(dir, name);
  await mkdir(folder, { recursive: true });
  for (const [i, r] of records.entries()) {
    const file = typeof r === 'string' ? `broken-${i}.json` : `${r.id}.json`;
    await writeFile(join(folder, file), typeof r === 'string' ? r : JSON.stringify(r));
  }
  const zip = join(dir, `${name}.zip`);
  // The real `zip` tool builds the archive, as the OSV exports are built by real tools.
  execFileSync('zip', ['-q', '-r', '-j', zip, folder]);
  return { folder, zip };
}

function suite(
  label: string,
  open: () => Promise<{ db: Database; close: () => Promise<void> }>,
  options = {},
) {
  void describe(`vulnerability database on ${label}`, options, () => {
    let db: Database;
    let close: () => Promise<void>;
    let vdb: VulnerabilityDatabase;
    before(async () => {
      ({ db, close } = await open());
      vdb = new VulnerabilityDatabase({
        db,
        clock,
        config: validateRaw(vulndbConfigSchema, { maxAge: '30d' }, 'test'),
      });
      await vdb.migrate();
    });
    after(async () => close());

    void it('is unavailable while empty', async () => {
      const p = await vdb.forPackage('npm', 'lodash');
      assert.equal(p.available, false);
      assert.match(p.unavailableReason ?? '', /empty/);
    });

    void it('imports a ZIP, skips invalid entries and answers per version', async () => {
      const { zip } = await writeExport('v1', [
        record('GHSA-1', '2026-01-01T00:00:00Z', 'lodash', [{ introduced: '0' }, { fixed: '4.17.21' }]),
        record(
          'PYSEC-1',
          '2026-01-01T00:00:00Z',
          'Django_Rest',
          [{ introduced: '1.0' }, { fixed: '1.2' }],
          'PyPI',
        ),
        '{not json',
      ]);
      const progress: number[] = [];
      const stats = await vdb.import(zip, { onProgress: (s) => progress.push(s.read) });
      assert.deepEqual(
        { ...stats, invalidSamples: stats.invalidSamples.length },
        {
          read: 3,
          inserted: 2,
          updated: 0,
          unchanged: 0,
          invalid: 1,
          invalidSamples: 1,
        },
      );
      assert.ok(progress.length > 0);
      const lodash = await vdb.forPackage('npm', 'lodash');
      assert.equal(lodash.available, true);
      assert.equal(lodash.updatedAt, now);
      assert.deepEqual(
        lodash.affecting('4.17.20').map((a) => a.id),
        ['GHSA-1'],
      );
      assert.deepEqual(lodash.affecting('4.17.21'), []);
      assert.deepEqual(
        lodash.fixedBy('4.17.21').map((a) => a.id),
        ['GHSA-1'],
      );
      const django = await vdb.forPackage('pypi', 'django-rest');
      assert.deepEqual(
        django.affecting('1.1').map((a) => a.severity),
        ['high'],
      );
    });

    void it('imports incrementally: unchanged records are skipped, newer ones replace', async () => {
      const { folder } = await writeExport('v2', [
        record('GHSA-1', '2026-01-01T00:00:00Z', 'lodash', [{ introduced: '0' }, { fixed: '4.17.21' }]),
        record('GHSA-2', '2026-02-01T00:00:00Z', 'lodash', [{ introduced: '0' }, { fixed: '4.17.22' }]),
        record(
          'PYSEC-1',
          '2026-03-01T00:00:00Z',
          'django-rest',
          [{ introduced: '1.0' }, { fixed: '1.3' }],
          'PyPI',
        ),
      ]);
      now += DAY;
      const stats = await vdb.import(folder);
      assert.equal(stats.unchanged, 1);
      assert.equal(stats.inserted, 1);
      assert.equal(stats.updated, 1);
      const django = await vdb.forPackage('pypi', 'Django.Rest');
      assert.equal(django.affecting('1.2').length, 1);
      assert.equal((await vdb.status()).advisories, 3);
    });

    void it('counts as unavailable when older than maxAge', async () => {
      now += 40 * DAY;
      const p = await vdb.forPackage('npm', 'lodash-older');
      assert.equal(p.available, false);
      assert.match(p.unavailableReason ?? '', /old \(limit 30d\)/);
      now -= 40 * DAY;
    });
  });
}

suite('SQLite', async () => {
  const db = await createSqliteDatabase({ file: ':memory:' });
  return { db, close: () => db.close() };
});

const pg = requirePostgres();
suite(
  'PostgreSQL',
  async () => {
    const iso = await isolatedPostgres(pg.need(), 'vulndb');
    const db = createPostgresDatabase({ url: iso.url });
    return {
      db,
      close: async () => {
        await db.close();
        await iso.drop();
      },
    };
  },
  pg.options,
);

void describe('OSV ZIP reader', () => {
  void it('rejects a file that is not a ZIP archive and a truncated one', async () => {
    const db = await createSqliteDatabase({ file: ':memory:' });
    const vdb = new VulnerabilityDatabase({ db, clock, config: validateRaw(vulndbConfigSchema, {}, 'test') });
    await vdb.migrate();
    const junk = join(dir, 'junk.zip');
    await writeFile(junk, 'this is not a zip file at all');
    await assert.rejects(vdb.import(junk), { code: 'GW_ERR_VULNDB_IMPORT_INVALID' });
    const { zip } = await writeExport('trunc', [
      record('GHSA-9', '2026-01-01T00:00:00Z', 'x', [{ introduced: '0' }]),
    ]);
    const { readFile } = await import('node:fs/promises');
    const bytes = await readFile(zip);
    // Corrupt the compressed payload: the CRC-32 check must catch it.
    const bad = Buffer.from(bytes);
    const dataEnd = bytes.readUInt32LE(bytes.length - 22 + 16) - 1;
    bad[dataEnd - 4] = (bad[dataEnd - 4] ?? 0) ^ 0xff;
    await writeFile(join(dir, 'bad.zip'), bad);
    await assert.rejects(vdb.import(join(dir, 'bad.zip')), { code: 'GW_ERR_VULNDB_IMPORT_INVALID' });
    await writeFile(join(dir, 'cut.zip'), bytes.subarray(0, bytes.length - 30));
    await assert.rejects(vdb.import(join(dir, 'cut.zip')), { code: 'GW_ERR_VULNDB_IMPORT_INVALID' });
    await db.close();
  });
});
