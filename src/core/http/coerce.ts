import type { FastifyRequest } from 'fastify';

/**
 * Options of the main server's schema validator. Ajv's type coercion is off, so a JSON body
 * must carry the types its schema names: with Fastify's default (`coerceTypes: "array"`)
 * `{"username": ["admin"]}` validated as the string "admin" and numbers became strings.
 * Querystrings and path parameters are text by nature; `coerceQueryAndParams` converts them.
 */
export const VALIDATOR_OPTIONS = { customOptions: { coerceTypes: false } } as const;

type SchemaNode = { readonly type?: unknown; readonly properties?: unknown; readonly items?: unknown };

const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

const typesOf = (schema: SchemaNode): readonly unknown[] =>
  Array.isArray(schema.type) ? schema.type : [schema.type];

/**
 * One query or parameter value as its schema's type asks: a number for number and integer, a
 * boolean for "true"/"false", a list for an array (a single value becomes one item). Anything
 * else stays text, so that validation refuses it and names the field.
 */
function coerceValue(value: unknown, schema: SchemaNode | undefined): unknown {
  if (schema === undefined || typeof schema !== 'object') return value;
  const types = typesOf(schema);
  if (types.includes('array')) {
    const items = schema.items as SchemaNode | undefined;
    return (Array.isArray(value) ? value : [value]).map((item) => coerceValue(item, items));
  }
  if (typeof value !== 'string' || types.includes('string')) return value;
  if ((types.includes('number') || types.includes('integer')) && NUMBER.test(value)) return Number(value);
  if (types.includes('boolean') && (value === 'true' || value === 'false')) return value === 'true';
  return value;
}

function coerceObject(values: unknown, schema: unknown): unknown {
  const properties = (schema as SchemaNode | undefined)?.properties as Record<string, SchemaNode> | undefined;
  if (values === null || typeof values !== 'object' || properties === undefined) return values;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) {
    out[key] = Object.hasOwn(properties, key) ? coerceValue(value, properties[key]) : value;
  }
  return out;
}

/**
 * preValidation hook: converts the querystring and path parameters of a route with schemas to
 * the types the schemas name, which Ajv no longer does (see VALIDATOR_OPTIONS).
 */
export async function coerceQueryAndParams(request: FastifyRequest): Promise<void> {
  const schema = request.routeOptions.schema;
  if (schema === undefined) return;
  if (schema.querystring !== undefined) request.query = coerceObject(request.query, schema.querystring);
  if (schema.params !== undefined) request.params = coerceObject(request.params, schema.params);
}
