import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { describeSchema } from '#core/config';
import { CATALOGUE } from '#core/errors';
import { gatehouseConfigSchema } from '../src/cli/config-schema.ts';
import { configIntro, renderConfig, renderErrors } from './gen-docs.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

describe('documentation is in sync with the code', () => {
  it('docs/errors.md lists exactly the catalogue', () => {
    assert.equal(read('docs/errors.md'), renderErrors(), 'docs/errors.md is stale: run "npm run docs"');
    for (const d of CATALOGUE) assert.match(read('docs/errors.md'), new RegExp(`\\| \`${d.code}\` \\|`));
  });

  it('docs/config.md covers every key of the schema', () => {
    const text = read('docs/config.md');
    assert.equal(text, renderConfig(configIntro()), 'docs/config.md is stale: run "npm run docs"');
    for (const row of describeSchema(gatehouseConfigSchema))
      assert.ok(text.includes(`| \`${row.path}\` |`), row.path);
  });

  it('every error code has a unique catalogue entry with a description', () => {
    const codes = CATALOGUE.map((d) => d.code);
    assert.equal(new Set(codes).size, codes.length, 'duplicate codes in the catalogue');
    for (const d of CATALOGUE) {
      assert.match(d.code, /^GW_ERR_[A-Z0-9]+(?:_[A-Z0-9]+)*$/);
      assert.ok(d.description.length > 10, `${d.code} needs a description`);
    }
  });
});

describe('error codes used in the source', () => {
  it('are all in the catalogue', async () => {
    const { readdirSync, statSync } = await import('node:fs');
    const known = new Set<string>(CATALOGUE.map((d) => d.code));
    const missing: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir)) {
        const full = join(dir, entry);
        if (statSync(full).isDirectory()) walk(full);
        else if (entry.endsWith('.ts') && !entry.endsWith('.test.ts')) {
          for (const m of readFileSync(full, 'utf8').matchAll(/['"`](GW_ERR_[A-Z0-9_]+)['"`]/g)) {
            const code = m[1];
            if (code === undefined || known.has(code)) continue;
            // A prefix ending in "_" (startsWith checks) is fine when catalogue codes share it.
            if (code.endsWith('_') && [...known].some((k) => k.startsWith(code))) continue;
            missing.push(`${full.slice(root.length + 1)}: ${code}`);
          }
        }
      }
    };
    walk(join(root, 'src'));
    assert.deepEqual(missing, [], 'codes thrown but not in the catalogue');
  });
});
