/**
 * deploy/dashboards/gatehouse.json may only query metrics the gateway exports: the names the
 * code registers (read from the sources, so renaming a metric fails this test) and the Node.js
 * process metrics the metrics module collects with its prefix.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { createMetrics } from '#core/metrics';
import { ROOT } from '../../scripts/render-chart.ts';

type Kind = 'counter' | 'gauge' | 'histogram';

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'testing' && entry.name !== 'gen') out.push(...(await sourceFiles(path)));
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) {
      out.push(path);
    }
  }
  return out;
}

/** The bracketed block that follows `const NAME = ` in a source text. */
function constBlock(text: string, name: string): string {
  const start = text.indexOf(`const ${name} = {`);
  if (start < 0) return '';
  const end = text.indexOf('} as const', start);
  return text.slice(start, end < 0 ? undefined : end);
}

/**
 * Metric names registered in src/: `.counter({ name: '…' })` and its gauge/histogram forms, and
 * tables of `[name, help, labels]` tuples under a `` `prefix_${name}` `` template (the edge door).
 */
async function registeredMetrics(): Promise<Map<string, Kind>> {
  const names = new Map<string, Kind>();
  for (const file of await sourceFiles(join(ROOT, 'src'))) {
    const text = await readFile(file, 'utf8');
    for (const m of text.matchAll(/\.(counter|gauge|histogram)\(\{\s*name: '([a-zA-Z_:][a-zA-Z0-9_:]*)'/g)) {
      names.set(m[2] as string, m[1] as Kind);
    }
    const prefix = /name: `([a-z_]+)\$\{name\}`/.exec(text)?.[1];
    if (prefix === undefined) continue;
    const tuple = /\[\s*'([a-z][a-z0-9_]*)',\s*'[A-Z]/g;
    const before = names.size;
    for (const [block, kind] of [
      ['GAUGES', 'gauge'],
      ['COUNTERS', 'counter'],
    ] as const) {
      for (const m of constBlock(text, block).matchAll(tuple)) names.set(`${prefix}${m[1]}`, kind);
    }
    for (const m of text.matchAll(/\.histogram\(\{\s*\.\.\.options\(\[\s*'([a-z][a-z0-9_]*)'/g)) {
      names.set(`${prefix}${m[1]}`, 'histogram');
    }
    assert.ok(names.size > before, `${relative(ROOT, file)} builds metric names that this test cannot read`);
  }
  return names;
}

/** The process metrics of the real registry (prom-client's defaults under the gateway's prefix). */
async function processMetrics(): Promise<Map<string, Kind>> {
  const { body } = await createMetrics().render();
  const names = new Map<string, Kind>();
  for (const m of body.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const type =
      m[2] === 'histogram' || m[2] === 'summary' ? 'histogram' : m[2] === 'counter' ? 'counter' : 'gauge';
    names.set(m[1] as string, type);
  }
  return names;
}

/** Metric names a PromQL expression selects: identifiers followed by a selector or range. */
function queried(expr: string): string[] {
  const withoutStrings = expr.replace(/"[^"]*"/g, '""');
  return [...withoutStrings.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{[]/g)].map((m) => m[1] as string);
}

interface Panel {
  title?: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}

function expressions(dashboard: { panels: Panel[]; templating?: { list: { definition?: string }[] } }) {
  const out: { where: string; expr: string }[] = [];
  const walk = (panels: Panel[]) => {
    for (const panel of panels) {
      for (const target of panel.targets ?? []) {
        if (target.expr !== undefined) out.push({ where: `panel "${panel.title}"`, expr: target.expr });
      }
      walk(panel.panels ?? []);
    }
  };
  walk(dashboard.panels);
  for (const variable of dashboard.templating?.list ?? []) {
    const m = /label_values\((.*),\s*\w+\)$/.exec(variable.definition ?? '');
    if (m?.[1] !== undefined) out.push({ where: 'a template variable', expr: `${m[1]}{}` });
  }
  return out;
}

describe('Grafana dashboard', () => {
  it('queries only metrics that the gateway registers', async () => {
    const registered = await registeredMetrics();
    // Names fixed by the seed documents and ARCHITECTURE.md: the extraction must keep finding them.
    for (const name of [
      'proxy_requests_total',
      'gatehouse_http_requests_total',
      'gatehouse_edge_connections_active',
    ]) {
      assert.ok(registered.has(name), `the source scan no longer finds ${name}`);
    }
    const known = new Map([...(await processMetrics()), ...registered]);
    const dashboard = JSON.parse(await readFile(join(ROOT, 'deploy/dashboards/gatehouse.json'), 'utf8'));
    const exprs = expressions(dashboard);
    assert.ok(exprs.length > 20, 'the dashboard has too few queries');
    const used = new Set<string>();
    for (const { where, expr } of exprs) {
      const names = queried(expr);
      assert.ok(names.length > 0, `${where} queries no metric: ${expr}`);
      for (const name of names) {
        const base = name.replace(/_(bucket|sum|count)$/, '');
        const kind = known.get(name) ?? (known.get(base) === 'histogram' ? 'histogram' : undefined);
        assert.ok(kind !== undefined, `${where} queries "${name}", which the gateway does not export`);
        if (name.endsWith('_bucket'))
          assert.equal(kind, 'histogram', `${where}: "${name}" is not a histogram`);
        used.add(known.has(name) ? name : base);
      }
    }
    // Every door's metrics appear on the dashboard.
    for (const prefix of [
      'gatehouse_http_',
      'gatehouse_registry_',
      'gatehouse_artifacts_',
      'proxy_',
      'gatehouse_edge_',
    ]) {
      assert.ok(
        [...used].some((n) => n.startsWith(prefix)),
        `no panel shows ${prefix}* metrics`,
      );
    }
  });
});
