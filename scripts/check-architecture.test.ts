import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { checkArchitecture, importsOf } from './check-architecture.ts';

const roots: string[] = [];
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

/** Builds a small repository with the given files on top of a clean baseline. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'arch-'));
  roots.push(root);
  const baseline: Record<string, string> = {
    'package.json': JSON.stringify({
      dependencies: { fastify: '1' },
      devDependencies: { 'fast-check': '1' },
      imports: { '#core/*': './src/core/*/index.ts', '#testing/*': './src/testing/*.ts' },
    }),
    'src/main.ts':
      "import { createEdgeDoor } from './doors/edge/index.ts';\nimport { log } from '#core/log';\n",
    'src/core/log/index.ts': 'export const log = 1;\n',
    'src/core/errors/index.ts': "import { log } from '#core/log';\nexport const e = log;\n",
    'src/doors/edge/index.ts':
      "import { e } from '#core/errors';\nimport fastify from 'fastify';\nimport { x } from './route-table.ts';\nexport const createEdgeDoor = [e, fastify, x];\n",
    'src/doors/edge/route-table.ts': "import { readFile } from 'node:fs';\nexport const x = readFile;\n",
    'src/doors/kv/index.ts': 'export const createKvDoor = 1;\n',
    'src/doors/kv/index.test.ts':
      "import fc from 'fast-check';\nimport { t } from '#testing/core';\nexport const y = [fc, t];\n",
    'src/testing/core.ts': 'export const t = 1;\n',
  };
  for (const [path, text] of Object.entries({ ...baseline, ...files })) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

const rules = (root: string) => checkArchitecture(root).map((v) => `${v.rule}:${v.file}`);

describe('check-architecture', () => {
  it('passes a tree that follows the rules', () => {
    assert.deepEqual(rules(tree({})), []);
  });

  it('fails on a cross-door import', () => {
    const root = tree({
      'src/doors/kv/service.ts': "import { x } from '../edge/route-table.ts';\nexport const s = x;\n",
    });
    assert.deepEqual(rules(root), ['door-boundary:src/doors/kv/service.ts']);
  });

  it('fails on a core-to-door import', () => {
    const root = tree({
      'src/core/log/door.ts':
        "import { createKvDoor } from '../../doors/kv/index.ts';\nexport const d = createKvDoor;\n",
    });
    assert.ok(rules(root).includes('core-isolation:src/core/log/door.ts'));
  });

  it('fails on a deep core import, by alias and by relative path', () => {
    const root = tree({
      'src/doors/edge/deep.ts': "import { k } from '#core/errors/kinds.ts';\nexport const d = k;\n",
      'src/core/errors/deep.ts': "import { log } from '../log/index.ts';\nexport const d = log;\n",
    });
    const found = rules(root);
    assert.ok(found.includes('core-index:src/doors/edge/deep.ts'));
    assert.ok(found.includes('core-index:src/core/errors/deep.ts'));
  });

  it('fails on an import cycle', () => {
    const root = tree({
      'src/doors/edge/a.ts': "import { b } from './b.ts';\nexport const a = b;\n",
      'src/doors/edge/b.ts': "import { a } from './a.ts';\nexport const b = a;\n",
    });
    assert.deepEqual(rules(root), ['cycle:src/doors/edge/a.ts']);
  });

  it('fails when something other than main or the CLI imports a door', () => {
    const root = tree({
      'src/testing/door.ts':
        "import { createKvDoor } from '../doors/kv/index.ts';\nexport const d = createKvDoor;\n",
    });
    assert.deepEqual(rules(root), ['door-import:src/testing/door.ts']);
  });

  it('fails on undeclared packages and dev packages in production code', () => {
    const root = tree({
      'src/doors/edge/pkg.ts':
        "import lodash from 'lodash';\nimport fc from 'fast-check';\nexport const p = [lodash, fc];\n",
    });
    assert.deepEqual(rules(root), ['package:src/doors/edge/pkg.ts', 'package:src/doors/edge/pkg.ts']);
  });

  it('fails when production code reads process.env outside core/config', () => {
    const root = tree({ 'src/doors/edge/env.ts': 'export const port = process.env.PORT;\n' });
    assert.deepEqual(rules(root), ['env:src/doors/edge/env.ts']);
  });

  it('reads imports, re-exports, type imports and dynamic imports but not comments', () => {
    // Built from a keyword variable so that this file itself holds no import of 'a'..'h'.
    const kw = 'import';
    const text = [
      `${kw} a from 'a';`,
      `${kw} type { B } from 'b';`,
      "export { c } from 'c';",
      "export * from 'd';",
      `const e = await ${kw}('e');`,
      `// ${kw} f from 'f';`,
      `/* ${kw} g from 'g'; */`,
      `${kw} 'h';`,
    ].join('\n');
    assert.deepEqual(importsOf(text), ['a', 'b', 'c', 'd', 'e', 'h']);
  });
});
