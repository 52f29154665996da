/**
 * `gatehouse vulndb import` of a ZIP made by the real `zip` tool into a data folder, and `status`.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../../../src/cli/framework.ts';
import { vulndbCommands } from '../../../src/cli/vulndb.ts';

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'registry-vulndb-cli-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

async function cli(
  argv: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const chunks = { out: [] as Buffer[], err: [] as Buffer[] };
  stdout.on('data', (c: Buffer) => chunks.out.push(c));
  stderr.on('data', (c: Buffer) => chunks.err.push(c));
  const code = await runCli(argv, vulndbCommands, {
    env: { HOME: work, ...env },
    stdout,
    stderr,
    stdin: Readable.from([]),
  });
  return { code, stdout: Buffer.concat(chunks.out).toString(), stderr: Buffer.concat(chunks.err).toString() };
}

void describe('vulndb CLI', () => {
  void it('imports an OSV ZIP into the data folder, incrementally', async () => {
    const osv = join(work, 'osv');
    await mkdir(osv, { recursive: true });
    for (let i = 0; i < 3; i++) {
      await writeFile(
        join(osv, `GHSA-cli-${i}.json`),
        JSON.stringify({
          id: `GHSA-cli-${i}`,
          modified: '2026-01-01T00:00:00Z',
          affected: [{ package: { ecosystem: 'npm', name: `p${i}` }, versions: ['1.0.0'] }],
        }),
      );
    }
    const zip = join(work, 'all.zip');
    execFileSync('zip', ['-q', '-r', '-j', zip, osv]);
    const home = join(work, 'home');
    const first = await cli(['vulndb', 'import', zip, '--json'], { GATEHOUSE_HOME: home });
    assert.equal(first.code, 0, first.stderr);
    assert.equal((JSON.parse(first.stdout) as { inserted: number }).inserted, 3);
    const second = await cli(['vulndb', 'import', zip, '--json'], { GATEHOUSE_HOME: home });
    assert.equal((JSON.parse(second.stdout) as { unchanged: number }).unchanged, 3);
    const status = await cli(['vulndb', 'status'], { GATEHOUSE_HOME: home });
    assert.match(status.stdout, /3 advisories; last import \d{4}-/);
    const missing = await cli(['vulndb', 'import', join(work, 'nope.zip')], { GATEHOUSE_HOME: home });
    assert.notEqual(missing.code, 0);
  });
});
