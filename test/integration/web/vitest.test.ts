import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { processEnvironment } from '#core/config';

const WEB = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'web');
const VITEST = join(WEB, 'node_modules', 'vitest', 'vitest.mjs');

// The root `npm test` runs node:test; this runs the console's component tests (Vitest) inside it.
it('web console component tests (Vitest) pass', { timeout: 300_000 }, (t) => {
  if (!existsSync(VITEST)) return t.skip('web/node_modules is missing: run "npm --prefix web ci"');
  const env = processEnvironment();
  const result = spawnSync(process.execPath, [VITEST, 'run', '--reporter=dot'], {
    cwd: WEB,
    encoding: 'utf8',
    env: { PATH: env['PATH'] ?? '', HOME: env['HOME'] ?? '', CI: 'true', NO_COLOR: '1' },
    timeout: 280_000,
  });
  const output = `${result.stdout}\n${result.stderr}`;
  assert.equal(result.status, 0, output);
  assert.match(output, /Tests\s+\d+ passed/);
});
