import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateRaw } from '#core/config';
import { type Database, createSqliteDatabase } from '#core/storage';
import { VulnerabilityDatabase, vulndbConfigSchema } from '#core/vulndb';

/** An OSV record for tests: `name` in `ecosystem` is affected from `introduced` until `fixed`. */
export function osvRecord(
  id: string,
  ecosystem: string,
  name: string,
  introduced: string,
  fixed: string,
  score?: string,
) {
  return {
    schema_version: '1.6.0',
    id,
    modified: '2024-01-01T00:00:00Z',
    summary: `${name} is vulnerable`,
    aliases: [`CVE-2024-${id.slice(-4)}`],
    ...(score === undefined ? {} : { severity: [{ type: 'CVSS_V3', score }] }),
    affected: [
      { package: { ecosystem, name }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced }, { fixed }] }] },
    ],
  };
}

/** A critical CVSS v3.1 vector (9.8). */
export const CRITICAL = 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H';
/** A low CVSS v3.1 vector. */
export const LOW = 'CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N';

/** A real core/vulndb on a temporary SQLite database, loaded with `records` through the OSV importer. */
export async function vulndbWith(
  records: readonly object[],
  now: () => number = Date.now,
): Promise<{ vulndb: VulnerabilityDatabase; db: Database; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-osv-'));
  const db = await createSqliteDatabase({ file: join(dir, 'db.sqlite') });
  const vulndb = new VulnerabilityDatabase({
    db,
    clock: { now },
    config: validateRaw(vulndbConfigSchema, {}, 'test'),
  });
  await vulndb.migrate();
  const osvDir = join(dir, 'osv');
  mkdirSync(osvDir);
  for (const r of records) writeFileSync(join(osvDir, `${(r as { id: string }).id}.json`), JSON.stringify(r));
  await vulndb.import(osvDir);
  return {
    vulndb,
    db,
    async close() {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
