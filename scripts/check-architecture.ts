/**
 * Checks the dependency rules of ARCHITECTURE.md that a linter cannot see as a whole:
 * door boundaries, core isolation, index-only core access, declared packages, the single
 * reader of `process.env`, and import cycles. Exits 1 and lists every violation.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Violation {
  readonly file: string;
  readonly rule: string;
  readonly message: string;
}

const SOURCE_RE = /\.(?:ts|mts)$/;
const IMPORT_RE =
  /(?:^|[^.\w$])(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+\s+from\s+)?['"]([^'"]+)['"]|(?:^|[^.\w$])import\s*\(\s*['"]([^'"]+)['"]\s*\)/g;

function walk(dir: string, out: string[] = []): string[] {
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir)) {
    if (entry === 'node_modules' || entry === 'gen' || entry.startsWith('.')) continue;
    const full = join(dir, entry);
    if (statSync(full).isDirectory()) walk(full, out);
    else if (SOURCE_RE.test(entry)) out.push(full);
  }
  return out;
}

/** Removes comments and the contents of template literals so that examples in docs are not imports. */
function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

/** Every module specifier a file imports, re-exports or dynamically imports with a literal. */
export function importsOf(text: string): string[] {
  const out: string[] = [];
  for (const match of stripComments(text).matchAll(IMPORT_RE)) {
    const spec = match[1] ?? match[2];
    if (spec !== undefined) out.push(spec);
  }
  return out;
}

interface Area {
  readonly kind: 'core' | 'door' | 'cli' | 'main' | 'testing' | 'gen' | 'other';
  readonly name: string;
}

function areaOf(rel: string): Area {
  const parts = rel.split('/');
  if (parts[0] !== 'src') return { kind: 'other', name: parts[0] ?? '' };
  if (parts[1] === 'core') return { kind: 'core', name: parts[2] ?? '' };
  if (parts[1] === 'doors') return { kind: 'door', name: parts[2] ?? '' };
  if (parts[1] === 'cli') return { kind: 'cli', name: 'cli' };
  if (parts[1] === 'main.ts') return { kind: 'main', name: 'main' };
  if (parts[1] === 'testing') return { kind: 'testing', name: 'testing' };
  if (parts[1] === 'gen') return { kind: 'gen', name: 'gen' };
  return { kind: 'other', name: parts[1] ?? '' };
}

const isTestFile = (rel: string) =>
  rel.endsWith('.test.ts') || rel.startsWith('test/') || rel.includes('/contract');

function packageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] ?? spec);
}

interface PackageJson {
  readonly dependencies?: Record<string, string>;
  readonly devDependencies?: Record<string, string>;
  readonly imports?: Record<string, string>;
}

/** Resolves a specifier to a repository-relative file, or undefined for packages and builtins. */
function resolveSpecifier(root: string, fromRel: string, spec: string, pkg: PackageJson): string | undefined {
  if (spec.startsWith('.'))
    return relative(root, resolve(root, dirname(fromRel), spec))
      .split(sep)
      .join('/');
  for (const [pattern, target] of Object.entries(pkg.imports ?? {})) {
    const star = pattern.indexOf('*');
    if (star === -1) {
      if (spec === pattern) return target.replace(/^\.\//, '');
      continue;
    }
    const prefix = pattern.slice(0, star);
    if (spec.startsWith(prefix)) return target.replace('*', spec.slice(prefix.length)).replace(/^\.\//, '');
  }
  return undefined;
}

/** Checks the tree under `root`; returns every violation (empty when clean). */
export function checkArchitecture(root: string): Violation[] {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as PackageJson;
  const deps = new Set(Object.keys(pkg.dependencies ?? {}));
  const devDeps = new Set(Object.keys(pkg.devDependencies ?? {}));
  const builtins = new Set(builtinModules);
  const files = ['src', 'test', 'scripts', 'bench'].flatMap((d) => walk(join(root, d)));
  const violations: Violation[] = [];
  const graph = new Map<string, string[]>();

  for (const file of files) {
    const rel = relative(root, file).split(sep).join('/');
    const text = readFileSync(file, 'utf8');
    const from = areaOf(rel);
    const test = isTestFile(rel);
    const add = (rule: string, message: string) => violations.push({ file: rel, rule, message });
    const edges: string[] = [];

    if (
      rel.startsWith('src/') &&
      !rel.startsWith('src/core/config/') &&
      !test &&
      /\bprocess\.env\b/.test(stripComments(text))
    ) {
      add('env', 'Reads process.env outside core/config; take the value from configuration');
    }

    for (const spec of importsOf(text)) {
      if (spec.startsWith('node:') || builtins.has(spec)) continue;
      if (spec.startsWith('#core/') && spec.split('/').length > 2) {
        add('core-index', `Imports "${spec}": reach a core module only through #core/<module>`);
        continue;
      }
      const target = resolveSpecifier(root, rel, spec, pkg);
      if (target === undefined) {
        const name = packageName(spec);
        const production = rel.startsWith('src/') && !test && from.kind !== 'testing';
        if (production && !deps.has(name)) {
          add('package', `Imports "${spec}" but "${name}" is not in package.json dependencies`);
        } else if (!deps.has(name) && !devDeps.has(name)) {
          add('package', `Imports "${spec}" but "${name}" is not declared in package.json`);
        }
        continue;
      }
      edges.push(target);
      const to = areaOf(target);
      if (from.kind === 'core') {
        if (to.kind === 'door' || to.kind === 'cli' || to.kind === 'main') {
          add('core-isolation', `Core imports "${spec}": core never imports a door, the CLI or main.ts`);
        } else if (to.kind === 'core' && to.name !== from.name && spec.startsWith('.')) {
          add(
            'core-index',
            `Imports "${spec}": reach core module "${to.name}" only through #core/${to.name}`,
          );
        }
      }
      if (from.kind === 'door') {
        if (to.kind === 'door' && to.name !== from.name) {
          add(
            'door-boundary',
            `Door "${from.name}" imports "${spec}" from door "${to.name}": move shared code into core`,
          );
        } else if (to.kind === 'cli' || to.kind === 'main') {
          add(
            'door-boundary',
            `Door "${from.name}" imports "${spec}": doors never import the CLI or main.ts`,
          );
        } else if (to.kind === 'core' && spec.startsWith('.')) {
          add(
            'core-index',
            `Imports "${spec}": reach core module "${to.name}" only through #core/${to.name}`,
          );
        } else if (to.kind === 'testing' && !test) {
          add('testing', `Imports "${spec}": src/testing is for tests only`);
        }
      }
      if (
        to.kind === 'door' &&
        from.kind !== 'door' &&
        from.kind !== 'main' &&
        from.kind !== 'cli' &&
        rel.startsWith('src/')
      ) {
        add(
          'door-import',
          `Imports door "${to.name}" via "${spec}": only src/main.ts and src/cli/ import doors`,
        );
      }
    }
    graph.set(rel, edges);
  }
  violations.push(...findCycles(graph));
  return violations;
}

/** Tarjan's strongly connected components; every component of two or more files is a cycle. */
function findCycles(graph: ReadonlyMap<string, readonly string[]>): Violation[] {
  let index = 0;
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: Violation[] = [];
  const connect = (node: string): void => {
    indices.set(node, index);
    low.set(node, index);
    index += 1;
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue;
      if (!indices.has(next)) {
        connect(next);
        low.set(node, Math.min(low.get(node) ?? 0, low.get(next) ?? 0));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node) ?? 0, indices.get(next) ?? 0));
      }
    }
    if (low.get(node) === indices.get(node)) {
      const component: string[] = [];
      let member: string | undefined;
      do {
        member = stack.pop();
        if (member === undefined) break;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1) {
        const files = component.sort();
        out.push({ file: files[0] ?? node, rule: 'cycle', message: `Import cycle: ${files.join(' -> ')}` });
      }
    }
  };
  for (const node of graph.keys()) if (!indices.has(node)) connect(node);
  return out;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const violations = checkArchitecture(root);
  for (const v of violations) console.error(`${v.file}: [${v.rule}] ${v.message}`);
  if (violations.length > 0) {
    console.error(`\n${violations.length} architecture violation(s)`);
    process.exit(1);
  }
  console.log('Architecture: no violations');
}
