import { parseDuration, parseSize } from './units.ts';

/** One problem found while validating a configuration document. */
export interface ConfigIssue {
  /** Dotted key path, e.g. `edge.listeners[0].port`. */
  readonly path: string;
  /** The offending value as given (secrets are redacted). */
  readonly value: unknown;
  /** What the key accepts, e.g. `an integer from 1 to 65535`. */
  readonly expected: string;
  /** Where the value came from: the file, an environment variable or the default. */
  readonly source?: string;
  /**
   * Set for a rule across keys found when the document is checked as a whole (a compiled
   * policy, a listener setting): what is wrong, said in full, in place of `value`/`expected`.
   */
  readonly problem?: string;
}

/** Facts about a key used for validation messages, `config print` and docs/config.md. */
export interface FieldMeta {
  readonly description: string;
  /** Redacted by `config print` and in validation messages. */
  readonly secret?: boolean;
  /** Reloaded at run time (file change, SIGHUP, admin API); otherwise a restart is needed. */
  readonly dynamic?: boolean;
  /** An extra environment variable that also sets this key, e.g. `GATEHOUSE_LISTEN`. */
  readonly env?: string;
}

export interface ParseContext {
  readonly path: string;
  readonly issues: ConfigIssue[];
  /** True when the raw value is an environment string, so scalars parse from text. */
  readonly fromText: boolean;
  readonly source?: string;
}

/** A raw value taken from an environment variable; scalars are parsed from its text. */
export class EnvText {
  readonly text: string;
  readonly variable: string;
  constructor(text: string, variable: string) {
    this.text = text;
    this.variable = variable;
  }
}

/** A marker returned by parsers after they recorded an issue. */
export const INVALID: unique symbol = Symbol('invalid');
export type Parsed<T> = T | typeof INVALID;

export type SchemaKind =
  | 'string'
  | 'integer'
  | 'number'
  | 'boolean'
  | 'duration'
  | 'size'
  | 'enum'
  | 'array'
  | 'record'
  | 'object'
  | 'optional';

/** A validating parser for one configuration value. */
export interface Schema<T> {
  readonly kind: SchemaKind;
  readonly meta: FieldMeta;
  /** The raw default (as a user would write it), or undefined when the key is required. */
  readonly defaultRaw: unknown;
  /** A human description of what is accepted, used in issues and docs. */
  readonly expected: string;
  parse(input: unknown, ctx: ParseContext): Parsed<T>;
  /** Child schemas of objects (for docs, env overrides and reload). */
  readonly fields?: Readonly<Record<string, Schema<unknown>>>;
  /** Element schema of arrays and records. */
  readonly element?: Schema<unknown>;
  /** The schema wrapped by `optional`. */
  readonly inner?: Schema<unknown>;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

type Meta = string | FieldMeta;
const toMeta = (m: Meta): FieldMeta => (typeof m === 'string' ? { description: m } : m);

function issue(ctx: ParseContext, value: unknown, expected: string, meta?: FieldMeta): typeof INVALID {
  ctx.issues.push({
    path: ctx.path,
    value: meta?.secret === true ? '[redacted]' : value,
    expected,
    ...(ctx.source === undefined ? {} : { source: ctx.source }),
  });
  return INVALID;
}

function leaf<T>(
  kind: SchemaKind,
  meta: Meta,
  defaultRaw: unknown,
  expected: string,
  convert: (input: unknown, fromText: boolean) => T | undefined,
): Schema<T> {
  const m = toMeta(meta);
  return {
    kind,
    meta: m,
    defaultRaw,
    expected,
    parse(input, ctx) {
      const out = convert(input, ctx.fromText);
      return out === undefined ? issue(ctx, input, expected, m) : out;
    },
  };
}

export interface StringOptions {
  readonly default?: string;
  readonly pattern?: RegExp;
  readonly minLength?: number;
  readonly maxLength?: number;
  /** Describes the pattern for people, e.g. `a host:port pair`. */
  readonly format?: string;
  /** A semantic check the pattern cannot express (an address parses, a CIDR is in range). */
  readonly check?: (value: string) => boolean;
}

/** The expectation of a string leaf, naming its length bounds (a 20-character token is not empty). */
function describeLength(minLength: number, maxLength: number | undefined): string {
  if (maxLength !== undefined)
    return minLength > 0
      ? `a string of ${minLength} to ${maxLength} characters`
      : `a string of at most ${maxLength} characters`;
  if (minLength > 1) return `a string of at least ${minLength} characters`;
  return minLength === 1 ? 'a non-empty string' : 'a string';
}

/** A string, optionally constrained by length and pattern. */
export function string(meta: Meta, options: StringOptions = {}): Schema<string> {
  const { pattern, minLength = 0, maxLength = 65_536 } = options;
  const expected = options.format ?? describeLength(minLength, options.maxLength);
  return leaf('string', meta, options.default, expected, (v) => {
    if (typeof v !== 'string' || v.length < minLength || v.length > maxLength) return undefined;
    if (pattern !== undefined && !pattern.test(v)) return undefined;
    if (options.check !== undefined && !options.check(v)) return undefined;
    return v;
  });
}

export interface NumberOptions {
  readonly default?: number;
  readonly min?: number;
  readonly max?: number;
}

function rangeText(what: string, min?: number, max?: number): string {
  if (min !== undefined && max !== undefined) return `${what} from ${min} to ${max}`;
  if (min !== undefined) return `${what} of at least ${min}`;
  if (max !== undefined) return `${what} of at most ${max}`;
  return what;
}

function toNumber(v: unknown, fromText: boolean): number | undefined {
  if (typeof v === 'number') return v;
  if (fromText && typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return undefined;
}

/** A whole number within optional bounds. */
export function integer(meta: Meta, options: NumberOptions = {}): Schema<number> {
  const { min, max } = options;
  return leaf('integer', meta, options.default, rangeText('an integer', min, max), (v, fromText) => {
    const n = toNumber(v, fromText);
    if (n === undefined || !Number.isSafeInteger(n)) return undefined;
    if ((min !== undefined && n < min) || (max !== undefined && n > max)) return undefined;
    return n;
  });
}

/** A finite number within optional bounds. */
export function number(meta: Meta, options: NumberOptions = {}): Schema<number> {
  const { min, max } = options;
  return leaf('number', meta, options.default, rangeText('a number', min, max), (v, fromText) => {
    const n = toNumber(v, fromText);
    if (n === undefined || !Number.isFinite(n)) return undefined;
    if ((min !== undefined && n < min) || (max !== undefined && n > max)) return undefined;
    return n;
  });
}

/** `true` or `false` (from the environment also `1`/`0`, `yes`/`no`). */
export function boolean(meta: Meta, options: { readonly default?: boolean } = {}): Schema<boolean> {
  return leaf('boolean', meta, options.default, 'true or false', (v, fromText) => {
    if (typeof v === 'boolean') return v;
    if (!fromText || typeof v !== 'string') return undefined;
    const t = v.trim().toLowerCase();
    if (t === 'true' || t === '1' || t === 'yes' || t === 'on') return true;
    if (t === 'false' || t === '0' || t === 'no' || t === 'off') return false;
    return undefined;
  });
}

export interface DurationOptions {
  readonly default?: string;
  /** Lower bound in milliseconds. */
  readonly min?: number;
  /** Upper bound in milliseconds. */
  readonly max?: number;
}

/** A duration written like `"30s"`, `"1h30m"` or `"250ms"`; parsed to milliseconds. */
export function duration(meta: Meta, options: DurationOptions = {}): Schema<number> {
  const { min, max } = options;
  let expected = 'a duration such as "30s", "5m" or "250ms"';
  if (min !== undefined || max !== undefined) expected += ` (${rangeText('', min, max).trim()} ms)`;
  return leaf('duration', meta, options.default, expected, (v) => {
    if (typeof v !== 'string') return undefined;
    const ms = parseDuration(v);
    if (ms === undefined) return undefined;
    if ((min !== undefined && ms < min) || (max !== undefined && ms > max)) return undefined;
    return ms;
  });
}

/** A byte size written like `"10MiB"`, `"512KiB"`, `"1GB"` or a plain number of bytes. */
export function size(
  meta: Meta,
  options: Omit<NumberOptions, 'default'> & { readonly default?: string | number } = {},
): Schema<number> {
  const { min, max } = options;
  let expected = 'a size such as "10MiB", "512KiB" or a number of bytes';
  if (min !== undefined || max !== undefined) expected += ` (${rangeText('', min, max).trim()} bytes)`;
  return leaf('size', meta, options.default, expected, (v, fromText) => {
    let bytes: number | undefined;
    if (typeof v === 'number') bytes = Number.isSafeInteger(v) && v >= 0 ? v : undefined;
    else if (typeof v === 'string') bytes = parseSize(v);
    else return undefined;
    void fromText;
    if (bytes === undefined) return undefined;
    if ((min !== undefined && bytes < min) || (max !== undefined && bytes > max)) return undefined;
    return bytes;
  });
}

/** One of a fixed set of strings. */
export function oneOf<const V extends readonly string[]>(
  values: V,
  meta: Meta,
  options: { readonly default?: V[number] } = {},
): Schema<V[number]> {
  const expected = `one of ${values.map((v) => `"${v}"`).join(', ')}`;
  return leaf('enum', meta, options.default, expected, (v) =>
    typeof v === 'string' && (values as readonly string[]).includes(v) ? (v as V[number]) : undefined,
  );
}

/** A value that may be absent; absent parses to `undefined`. */
export function optional<T>(inner: Schema<T>): Schema<T | undefined> {
  return {
    kind: 'optional',
    meta: inner.meta,
    defaultRaw: undefined,
    expected: inner.expected,
    inner: inner as Schema<unknown>,
    ...(inner.fields === undefined ? {} : { fields: inner.fields }),
    parse(input, ctx) {
      if (input === undefined || input === null) return undefined;
      return inner.parse(input, ctx);
    },
  };
}

function parseTextStructure(input: unknown, ctx: ParseContext): unknown {
  // Environment overrides of lists and maps are JSON; a plain comma list is accepted for lists.
  if (!ctx.fromText || typeof input !== 'string') return input;
  const t = input.trim();
  if (t.startsWith('[') || t.startsWith('{')) {
    try {
      return JSON.parse(t);
    } catch {
      return input;
    }
  }
  return t === '' ? [] : t.split(',').map((s) => s.trim());
}

/** A list of values. */
export function array<T>(
  element: Schema<T>,
  meta: Meta,
  options: { readonly default?: readonly unknown[]; readonly maxItems?: number } = {},
): Schema<readonly T[]> {
  const m = toMeta(meta);
  const maxItems = options.maxItems ?? 10_000;
  return {
    kind: 'array',
    meta: m,
    defaultRaw: options.default,
    expected: `a list of ${element.expected}`,
    element: element as Schema<unknown>,
    parse(raw, ctx) {
      const input = parseTextStructure(raw, ctx);
      if (!Array.isArray(input) || input.length > maxItems) {
        return issue(ctx, raw, `a list (at most ${maxItems} items) of ${element.expected}`, m);
      }
      const out: T[] = [];
      let ok = true;
      input.forEach((item: unknown, i) => {
        const value = element.parse(item ?? element.defaultRaw, {
          ...ctx,
          fromText: ctx.fromText && typeof item === 'string',
          path: `${ctx.path}[${i}]`,
        });
        if (value === INVALID) ok = false;
        else out.push(value);
      });
      return ok ? out : INVALID;
    },
  };
}

/** A map from names (matching `keyPattern`) to values. */
export function record<T>(
  element: Schema<T>,
  meta: Meta,
  options: { readonly default?: Readonly<Record<string, unknown>>; readonly keyPattern?: RegExp } = {},
): Schema<Readonly<Record<string, T>>> {
  const m = toMeta(meta);
  const keyPattern = options.keyPattern ?? /^[A-Za-z0-9_.:@*/-]{1,253}$/;
  return {
    kind: 'record',
    meta: m,
    defaultRaw: options.default,
    expected: `a map of names to ${element.expected}`,
    element: element as Schema<unknown>,
    parse(raw, ctx) {
      const input = parseTextStructure(raw, ctx);
      if (typeof input !== 'object' || input === null || Array.isArray(input)) {
        return issue(ctx, raw, `a map of names to ${element.expected}`, m);
      }
      // No prototype: a lookup by a caller's name ("constructor", "__proto__", "toString")
      // finds only configured entries, and a "__proto__" key is an entry like any other.
      const out = Object.create(null) as Record<string, T>;
      let ok = true;
      for (const [key, item] of Object.entries(input)) {
        const path = `${ctx.path}.${key}`;
        if (!keyPattern.test(key)) {
          issue({ ...ctx, path }, key, `a name matching ${keyPattern.source}`);
          ok = false;
          continue;
        }
        const value = element.parse(item ?? element.defaultRaw, { ...ctx, fromText: false, path });
        if (value === INVALID) ok = false;
        else out[key] = value;
      }
      return ok ? out : INVALID;
    },
  };
}

type ObjectOf<F extends Record<string, Schema<unknown>>> = { readonly [K in keyof F]: Infer<F[K]> };

/**
 * A map with known keys. Unknown keys are errors (typos must not be silently ignored);
 * missing keys take their defaults; a key without a default that is missing is an error.
 */
export function object<F extends Record<string, Schema<unknown>>>(
  fields: F,
  meta: Meta,
): Schema<ObjectOf<F>> {
  const m = toMeta(meta);
  const names = Object.keys(fields);
  return {
    kind: 'object',
    meta: m,
    defaultRaw: {},
    expected: 'a map',
    fields,
    parse(raw, ctx) {
      const input = raw === undefined || raw === null ? {} : raw;
      if (typeof input !== 'object' || Array.isArray(input)) return issue(ctx, raw, 'a map', m);
      const given = input as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      let ok = true;
      for (const key of Object.keys(given)) {
        if (!Object.hasOwn(fields, key)) {
          const known = names.join(', ');
          issue({ ...ctx, path: join(ctx.path, key) }, given[key], `no such key; known keys: ${known}`);
          ok = false;
        }
      }
      for (const [key, schema] of Object.entries(fields)) {
        const path = join(ctx.path, key);
        let value = given[key];
        if (value === undefined) value = schema.defaultRaw;
        if (value === undefined && schema.kind !== 'optional') {
          issue({ ...ctx, path }, undefined, `a value (required): ${schema.expected}`);
          ok = false;
          continue;
        }
        let childCtx: ParseContext = { ...ctx, fromText: false, path };
        if (value instanceof EnvText) {
          childCtx = { ...childCtx, fromText: true, source: value.variable };
          value = value.text;
        }
        const parsed = schema.parse(value, childCtx);
        if (parsed === INVALID) ok = false;
        else out[key] = parsed;
      }
      return ok ? (out as ObjectOf<F>) : INVALID;
    },
  };
}

function join(base: string, key: string): string {
  return base === '' ? key : `${base}.${key}`;
}

/** A problem a schema's own checks cannot see, at `field` under the value's key ("" for the value). */
export interface SchemaProblem {
  readonly field: string;
  readonly value: unknown;
  readonly expected: string;
}

/** The path of `key` under `base`: `base.key`, `key` at the top of a document, `base` for "". */
const under = (base: string, key: string) => (key === '' ? base : join(base, key));

/**
 * `schema`, then `problems` for what it cannot say (a field against another, one entry against
 * the others). Each problem is an issue at its own key path, so `config validate`, a start, a
 * reload and an admin API name the key; a path the schema already reported is not reported
 * twice, and any problem makes the value invalid.
 */
export function withProblems<T>(
  schema: Schema<T>,
  problems: (raw: unknown, parsed: Parsed<T>) => readonly SchemaProblem[],
): Schema<T> {
  return {
    ...schema,
    parse(input, ctx) {
      const before = ctx.issues.length;
      const parsed = schema.parse(input, ctx);
      const named = new Set(ctx.issues.slice(before).map((i) => i.path));
      let ok = parsed !== INVALID;
      for (const problem of problems(input, parsed)) {
        const path = under(ctx.path, problem.field);
        if (named.has(path)) continue;
        named.add(path);
        ok = false;
        ctx.issues.push({
          path,
          value: problem.value,
          expected: problem.expected,
          ...(ctx.source === undefined ? {} : { source: ctx.source }),
        });
      }
      return ok ? parsed : INVALID;
    },
  };
}

/** Converts a camelCase key path to its environment variable, e.g. `storage.busyTimeout` → `GATEHOUSE_STORAGE_BUSY_TIMEOUT`. */
export function envName(path: readonly string[]): string {
  return `GATEHOUSE_${path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_')}`;
}
