/**
 * The registry command groups against a real gateway: `policy test` exit codes and reasons,
 * and `registry cache invalidate`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../../../src/cli/framework.ts';
import { policyCommands } from '../../../src/cli/policy.ts';
import { registryCommands } from '../../../src/cli/registry.ts';
import { ADMIN_TOKEN, type Gateway, startGateway } from './harness.ts';
import { type NpmUpstream, startNpmUpstream } from './npm-fixture.ts';

const DAY = 86_400_000;
const NOW = Date.now();
let work: string;
let up: NpmUpstream;
let gw: Gateway;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'registry-cli-'));
  up = await startNpmUpstream(work, [
    {
      name: 'lodash',
      versions: [
        { version: '4.17.20', publishedAt: NOW - 400 * DAY },
        { version: '4.17.21', publishedAt: NOW - 300 * DAY },
        { version: '4.17.22', publishedAt: NOW - 3_600_000 },
      ],
    },
  ]);
  gw = await startGateway({
    config: { npm: { uplinks: [{ name: 'public', url: up.url }] }, pypi: { enabled: false } },
  });
});

after(async () => {
  await gw?.[Symbol.asyncDispose]();
  await up?.[Symbol.asyncDispose]();
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
  const code = await runCli(argv, [...policyCommands, ...registryCommands], {
    env: { HOME: work, ...env },
    stdout,
    stderr,
    stdin: Readable.from([]),
  });
  return { code, stdout: Buffer.concat(chunks.out).toString(), stderr: Buffer.concat(chunks.err).toString() };
}

const remote = () => ['--server', gw.url, '--token', ADMIN_TOKEN];

void describe('registry CLI', () => {
  void it('policy test exits 0 for an allowed version and prints each rule', async () => {
    const r = await cli(['policy', 'test', 'npm', 'lodash@4.17.21', ...remote()]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ALLOWED/);
    assert.match(r.stdout, /min-age/);
    assert.match(r.stdout, /vulnerabilities/);
  });

  void it('policy test exits 10 for a denied version with the reason and when it will be allowed', async () => {
    const r = await cli(['policy', 'test', 'npm', 'lodash@4.17.22', ...remote()]);
    assert.equal(r.code, 10, r.stderr);
    assert.match(r.stdout, /DENIED/);
    assert.match(r.stdout, /minimum age is 2d/);
    assert.match(r.stdout, /Allowed from \d{4}-/);
  });

  void it('policy test fails with another status on errors', async () => {
    assert.equal((await cli(['policy', 'test', 'cargo', 'x@1', ...remote()])).code, 2);
    assert.equal((await cli(['policy', 'test', 'npm', 'lodash', ...remote()])).code, 2);
    assert.equal(
      (await cli(['policy', 'test', 'npm', 'lodash@1.0.0', '--server', gw.url, '--token', 'wrong'])).code,
      3,
    );
  });

  void it('invalidates the metadata cache', async () => {
    await fetch(`${gw.url}/npm/lodash`);
    const r = await cli([
      'registry',
      'cache',
      'invalidate',
      '--ecosystem',
      'npm',
      'lodash',
      '--json',
      ...remote(),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok((JSON.parse(r.stdout) as { removed: number }).removed > 0);
  });
});
