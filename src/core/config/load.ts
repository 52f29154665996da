import { readFile } from 'node:fs/promises';
import { isMap, isSeq, LineCounter, parseDocument } from 'yaml';
import { type ConfigIssue, EnvText, envName, INVALID, type Schema } from './schema.ts';

export type Environment = Readonly<Record<string, string | undefined>>;

/** Variables named GATEHOUSE_* that are not configuration keys. */
const NON_CONFIG_VARIABLES = new Set([
  'GATEHOUSE_CONFIG',
  // The CLI's own: the server, token and password it uses, the kv listener and its CA.
  'GATEHOUSE_URL',
  'GATEHOUSE_TOKEN',
  'GATEHOUSE_PASSWORD',
  'GATEHOUSE_KV_URL',
  'GATEHOUSE_KV_CA',
  'GATEHOUSE_TEST_CHROMIUM',
  'GATEHOUSE_TEST_POSTGRES_URL',
  'GATEHOUSE_TEST_REDIS_URL',
  'GATEHOUSE_TEST_NATS_URL',
  'GATEHOUSE_TEST_REQUIRE_SERVICES',
]);

/**
 * The variables Kubernetes gives a pod for every Service of its namespace (service links): a
 * Service named `gatehouse` or `gatehouse-kv` yields `GATEHOUSE_SERVICE_HOST`,
 * `GATEHOUSE_KV_PORT_7443_TCP_ADDR` and so on. They are ignored only when their value has the
 * shape Kubernetes gives it, so that a mistyped setting such as `GATEHOUSE_KV_PORT=7443` is
 * still reported.
 */
const SERVICE_LINKS: readonly [RegExp, RegExp][] = [
  [/^GATEHOUSE_(?:\w+_)?SERVICE_HOST$/, /^[\d.]+$|^[\da-f:]+$/i],
  [/^GATEHOUSE_(?:\w+_)?SERVICE_PORT(?:_\w+)?$/, /^\d{1,5}$/],
  [/^GATEHOUSE_(?:\w+_)?PORT$/, /^(?:tcp|udp|sctp):\/\/\S+:\d{1,5}$/],
  [/^GATEHOUSE_(?:\w+_)?PORT_\d{1,5}_(?:TCP|UDP|SCTP)$/, /^(?:tcp|udp|sctp):\/\/\S+:\d{1,5}$/],
  [/^GATEHOUSE_(?:\w+_)?PORT_\d{1,5}_(?:TCP|UDP|SCTP)_PROTO$/, /^(?:tcp|udp|sctp)$/],
  [/^GATEHOUSE_(?:\w+_)?PORT_\d{1,5}_(?:TCP|UDP|SCTP)_PORT$/, /^\d{1,5}$/],
  [/^GATEHOUSE_(?:\w+_)?PORT_\d{1,5}_(?:TCP|UDP|SCTP)_ADDR$/, /^[\d.]+$|^[\da-f:]+$/i],
];

const isServiceLink = (name: string, value: string | undefined): boolean =>
  SERVICE_LINKS.some(([n, v]) => n.test(name) && v.test(value ?? ''));

/** Raised at validate time when a document breaks its schema; lists every problem at once. */
export class ConfigValidationError extends TypeError {
  readonly issues: readonly ConfigIssue[];
  readonly origin: string;
  constructor(origin: string, issues: readonly ConfigIssue[]) {
    super(`Invalid configuration in ${origin}: ${issues.length} problem(s)\n${formatIssues(issues)}`);
    this.name = 'ConfigValidationError';
    this.issues = issues;
    this.origin = origin;
  }
}

/**
 * What is wrong at an issue's key, without the key: `"value"; expected …`, `missing; expected …`
 * for an absent key, or the problem itself for a rule across keys (`ConfigIssue.problem`).
 */
export function describeIssue(i: ConfigIssue): string {
  if (i.problem !== undefined) return i.problem;
  return `${i.value === undefined ? 'missing' : JSON.stringify(i.value)}; expected ${i.expected}`;
}

/** One line per issue: `path: "value" is not valid; expected … (from VAR)`. */
export function formatIssues(issues: readonly ConfigIssue[]): string {
  return issues
    .map((i) => {
      const from = i.source === undefined ? '' : ` (from ${i.source})`;
      // In a log line the value is said to be invalid in so many words.
      const what =
        i.problem === undefined && i.value !== undefined
          ? `${JSON.stringify(i.value)} is not valid; expected ${i.expected}`
          : describeIssue(i);
      return `  - ${i.path || '(document)'}: ${what}${from}`;
    })
    .join('\n');
}

export interface LoadOptions {
  /** YAML text; when absent and `file` is set, the file is read. */
  readonly text?: string;
  readonly file?: string;
  readonly env?: Environment;
  /** Values from command-line flags, applied last (e.g. `--listen`), as dotted paths. */
  readonly overrides?: Readonly<Record<string, unknown>>;
}

export interface Loaded<T> {
  readonly config: T;
  /** The raw document after environment overrides, before parsing (for reload comparisons). */
  readonly raw: Record<string, unknown>;
  /** Non-fatal findings, such as an unknown GATEHOUSE_* variable. */
  readonly warnings: readonly string[];
}

/** How many aliases a document may expand (yaml counts the nodes each alias brings in). */
const MAX_ALIASES = 100;

/** Parses YAML text into a raw document; syntax errors are reported with line and column. */
export function parseYaml(text: string, origin: string): Record<string, unknown> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const issues = doc.errors.map((e) => {
      const pos = lineCounter.linePos(e.pos[0]);
      return {
        path: `line ${pos.line}, column ${pos.col}`,
        value: undefined,
        expected: `valid YAML (${e.code})`,
      };
    });
    throw new ConfigValidationError(origin, issues);
  }
  if (doc.contents === null) return {};
  if (!isMap(doc.contents)) {
    throw new ConfigValidationError(origin, [
      {
        path: '',
        value: isSeq(doc.contents) ? '[list]' : String(doc.toJSON()),
        expected: 'a YAML map at the top level',
      },
    ]);
  }
  // A bounded alias count refuses billion-laughs documents, as an invalid document of `origin`.
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIASES }) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigValidationError(origin, [
      {
        path: '',
        value: undefined,
        expected: `a document that expands at most ${MAX_ALIASES} aliases (${(error as Error).message})`,
      },
    ]);
  }
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) {
      const created: Record<string, unknown> = {};
      node[key] = created;
      node = created;
    } else {
      node = next as Record<string, unknown>;
    }
  }
  const last = path.at(-1);
  if (last !== undefined) node[last] = value;
}

/** Walks object fields (through optionals) calling `visit` for each key path. */
export function walkSchema(
  schema: Schema<unknown>,
  visit: (path: readonly string[], schema: Schema<unknown>) => void,
  path: readonly string[] = [],
): void {
  const fields = schema.fields ?? schema.inner?.fields;
  if (fields === undefined) return;
  for (const [key, child] of Object.entries(fields)) {
    const childPath = [...path, key];
    visit(childPath, child);
    walkSchema(child, visit, childPath);
  }
}

/** Places GATEHOUSE_<PATH> variables into the raw document, returning unknown variable names. */
export function applyEnvironment(
  schema: Schema<unknown>,
  raw: Record<string, unknown>,
  env: Environment,
): string[] {
  const known = new Set<string>(NON_CONFIG_VARIABLES);
  walkSchema(schema, (path, child) => {
    const names = [envName(path), ...(child.meta.env === undefined ? [] : [child.meta.env])];
    for (const name of names) {
      known.add(name);
      const value = env[name];
      // Objects are set key by key; a whole object from one variable would hide typos.
      if (value === undefined || child.kind === 'object') continue;
      setPath(raw, path, new EnvText(value, name));
    }
  });
  return Object.keys(env).filter(
    (name) => name.startsWith('GATEHOUSE_') && !known.has(name) && !isServiceLink(name, env[name]),
  );
}

/** Validates a raw document against the schema, throwing ConfigValidationError with every issue. */
export function validateRaw<T>(schema: Schema<T>, raw: Record<string, unknown>, origin: string): T {
  const issues: ConfigIssue[] = [];
  const config = schema.parse(raw, { path: '', issues, fromText: false });
  if (config === INVALID || issues.length > 0) throw new ConfigValidationError(origin, issues);
  return config;
}

/**
 * Loads a configuration: YAML file or text, then GATEHOUSE_* environment overrides, then
 * command-line overrides, validated as a whole. Throws ConfigValidationError listing all issues.
 */
export async function loadConfig<T>(schema: Schema<T>, options: LoadOptions = {}): Promise<Loaded<T>> {
  const origin = options.file ?? (options.text === undefined ? 'defaults' : 'configuration text');
  let text = options.text;
  if (text === undefined && options.file !== undefined) {
    try {
      text = await readFile(options.file, 'utf8');
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code ?? 'error';
      throw new ConfigValidationError(options.file, [
        { path: '', value: options.file, expected: `a readable YAML file (${code})` },
      ]);
    }
  }
  const raw = text === undefined ? {} : parseYaml(text, origin);
  const unknown = applyEnvironment(schema, raw, options.env ?? {});
  for (const [dotted, value] of Object.entries(options.overrides ?? {})) {
    if (value !== undefined) setPath(raw, dotted.split('.'), value);
  }
  const config = validateRaw(schema, raw, origin);
  const warnings = unknown.map((name) => `Ignoring unknown environment variable "${name}"`);
  return { config, raw, warnings };
}
