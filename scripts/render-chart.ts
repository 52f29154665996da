/**
 * Renders deploy/helm/gatehouse without Helm: the values are merged here the way Helm merges
 * them, and the templates are executed by scripts/helm-render (Go's text/template with the
 * Helm functions the chart uses). test/deploy uses it; `node scripts/render-chart.ts --write`
 * regenerates deploy/kubernetes/gatehouse.yaml, the plain manifests (default values).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const CHART_DIR = join(ROOT, 'deploy/helm/gatehouse');
export const MANIFESTS_FILE = join(ROOT, 'deploy/kubernetes/gatehouse.yaml');
/** The release the committed manifests are rendered for. */
export const DEFAULT_RELEASE = { name: 'gatehouse', namespace: 'gatehouse' } as const;

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonMap = { [key: string]: Json };

export interface RenderOptions {
  /** Values merged over the chart's values.yaml (`helm --values`); null removes a key. */
  readonly values?: JsonMap;
  readonly releaseName?: string;
  readonly namespace?: string;
}

export interface RenderedTemplate {
  /** `gatehouse/templates/<file>`, as `helm template` names it in `# Source:` lines. */
  readonly name: string;
  readonly content: string;
}

const isMap = (v: unknown): v is JsonMap => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Helm's coalescing of values: maps merge key by key, null deletes, anything else replaces. */
export function mergeValues(base: JsonMap, override: JsonMap): JsonMap {
  const out: JsonMap = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const current = out[key];
    if (value === null) delete out[key];
    else if (isMap(value) && isMap(current)) out[key] = mergeValues(current, value);
    else out[key] = value;
  }
  return out;
}

/** Whether Go is installed (Debian's golang-go; .ci/run installs it). */
export async function goAvailable(): Promise<boolean> {
  try {
    await promisify(execFile)('go', ['version'], { timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

function goEnv(): NodeJS.ProcessEnv {
  // Only the standard library is used: never reach for a module proxy.
  const env: NodeJS.ProcessEnv = { ...process.env, GOPROXY: 'off', GOFLAGS: '', GO111MODULE: 'off' };
  if (env['GOCACHE'] === undefined && env['HOME'] === undefined && env['XDG_CACHE_HOME'] === undefined) {
    env['GOCACHE'] = join(tmpdir(), 'gatehouse-go-cache');
  }
  return env;
}

let built: Promise<string> | undefined;

/** Compiles the renderer once per process and returns the binary's path. */
export function buildRenderer(): Promise<string> {
  built ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'helm-render-'));
    const binary = join(dir, 'helm-render');
    await promisify(execFile)('go', ['build', '-o', binary, join(ROOT, 'scripts/helm-render/main.go')], {
      env: goEnv(),
      timeout: 300_000,
    });
    return binary;
  })();
  return built;
}

function run(binary: string, input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else reject(new Error(`Cannot render the chart: ${Buffer.concat(err).toString('utf8').trim()}`));
    });
    child.stdin.end(input);
  });
}

/** Reads a YAML file of the chart as a map. */
async function readYamlMap(file: string): Promise<JsonMap> {
  const value: unknown = parse(await readFile(file, 'utf8'));
  if (!isMap(value)) throw new TypeError(`${file} is not a YAML map`);
  return value;
}

/** Renders every template of the chart (NOTES.txt included) with values.yaml plus `values`. */
export async function renderChart(options: RenderOptions = {}): Promise<RenderedTemplate[]> {
  const chart = await readYamlMap(join(CHART_DIR, 'Chart.yaml'));
  const defaults = await readYamlMap(join(CHART_DIR, 'values.yaml'));
  const chartName = chart['name'];
  if (typeof chartName !== 'string') throw new TypeError('Chart.yaml has no name');
  // .Chart exposes Chart.yaml's fields with capitalised names (name -> Name).
  const chartObject = Object.fromEntries(
    Object.entries(chart).map(([key, value]) => [key.charAt(0).toUpperCase() + key.slice(1), value]),
  );
  const input = {
    templatesDir: join(CHART_DIR, 'templates'),
    chartName,
    values: mergeValues(defaults, options.values ?? {}),
    chart: chartObject,
    release: {
      Name: options.releaseName ?? DEFAULT_RELEASE.name,
      Namespace: options.namespace ?? DEFAULT_RELEASE.namespace,
      Service: 'Helm',
      IsInstall: true,
      IsUpgrade: false,
      Revision: 1,
    },
    apiVersions: ['v1', 'apps/v1', 'policy/v1', 'networking.k8s.io/v1', 'autoscaling/v2'],
    kubeVersion: { Version: 'v1.31.0', Major: '1', Minor: '31', GitVersion: 'v1.31.0' },
  };
  const binary = await buildRenderer();
  return JSON.parse(await run(binary, JSON.stringify(input))) as RenderedTemplate[];
}

/** The manifests as `helm template` prints them: one `# Source:` document per non-empty part. */
export function manifestsText(templates: readonly RenderedTemplate[]): string {
  const parts: string[] = [];
  for (const template of templates) {
    if (template.name.endsWith('NOTES.txt')) continue;
    for (const document of template.content.split(/^---\s*$/m)) {
      if (document.trim() === '') continue;
      parts.push(`---\n# Source: ${template.name}\n${document.replace(/^\n+/, '').trimEnd()}\n`);
    }
  }
  return parts.join('');
}

const HEADER = `# Gatehouse on Kubernetes without Helm: deploy/helm/gatehouse rendered with its default values
# (release "gatehouse"). Generated by \`node scripts/render-chart.ts --write\`; do not edit, change
# the chart instead (test/deploy checks that this file equals a fresh render).
# kubectl create namespace gatehouse && kubectl -n gatehouse apply -f deploy/kubernetes/gatehouse.yaml
`;

/** The committed plain manifests' text for the current chart. */
export async function renderDefaultManifests(): Promise<string> {
  return HEADER + manifestsText(await renderChart());
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const text = await renderDefaultManifests();
  if (process.argv.includes('--write')) {
    await writeFile(MANIFESTS_FILE, text);
    console.log(`Wrote ${MANIFESTS_FILE}`);
  } else {
    process.stdout.write(text);
  }
}
