import { walkSchema } from './load.ts';
import { envName, type Schema } from './schema.ts';

/** One documented key, as listed in docs/config.md. */
export interface KeyDescription {
  readonly path: string;
  readonly env: readonly string[];
  readonly expected: string;
  readonly default: string;
  readonly dynamic: boolean;
  readonly secret: boolean;
  readonly description: string;
}

function showDefault(raw: unknown): string {
  if (raw === undefined) return '';
  if (typeof raw === 'string') return raw === '' ? '""' : raw;
  return JSON.stringify(raw);
}

/**
 * Every key of a schema with its environment variable, type, default and description.
 * A key under a dynamic section is dynamic too.
 */
export function describeSchema(schema: Schema<unknown>): KeyDescription[] {
  const rows: KeyDescription[] = [];
  const dynamicPrefixes: string[] = [];
  walkSchema(schema, (path, child) => {
    const dotted = path.join('.');
    const dynamic = child.meta.dynamic === true || dynamicPrefixes.some((p) => dotted.startsWith(`${p}.`));
    if (child.meta.dynamic === true) dynamicPrefixes.push(dotted);
    rows.push({
      path: dotted,
      env:
        child.kind === 'object'
          ? []
          : [envName(path), ...(child.meta.env === undefined ? [] : [child.meta.env])],
      expected: child.expected,
      default: child.kind === 'object' ? '' : showDefault(child.defaultRaw),
      dynamic,
      secret: child.meta.secret === true,
      description: child.meta.description,
    });
  });
  return rows;
}

/** A deep copy with every secret key replaced by `[redacted]` (for `config print`). */
export function redact(schema: Schema<unknown>, value: unknown): unknown {
  if (schema.meta.secret === true) return value === undefined || value === '' ? value : '[redacted]';
  const fields = schema.fields ?? schema.inner?.fields;
  const element = schema.element ?? schema.inner?.element;
  if (fields !== undefined && typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(fields)) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = redact(child, v);
    }
    return out;
  }
  if (element !== undefined && Array.isArray(value)) return value.map((v) => redact(element, v));
  if (element !== undefined && typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(element, v)]));
  }
  return value;
}
