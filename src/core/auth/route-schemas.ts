import { ROLES } from '#core/rbac';

// JSON schemas of the identity API bodies. Unknown fields are refused, not dropped: a typo
// such as "role" for "roles" must not silently create a user without roles. Fastify's Ajv
// runs with `removeAdditional`, which strips properties when `additionalProperties` is
// `false`; a schema that nothing satisfies makes them fail validation instead.
const NO_EXTRA = { not: {} } as const;

const NAMESPACE = { type: 'string', pattern: '^(\\*|[A-Za-z0-9][A-Za-z0-9._\\-/]{0,252})$' } as const;

/** `{ role, namespace }`. */
export const BINDING = {
  type: 'object',
  additionalProperties: NO_EXTRA,
  required: ['role', 'namespace'],
  properties: { role: { type: 'string', enum: [...ROLES] }, namespace: NAMESPACE },
} as const;

/** A list of bindings. */
export const BINDINGS = { type: 'array', maxItems: 100, items: BINDING } as const;

/** `{ subject, role, namespace }`. */
export const SUBJECT_BINDING = {
  type: 'object',
  additionalProperties: NO_EXTRA,
  required: ['subject', 'role', 'namespace'],
  properties: {
    subject: { type: 'string', pattern: '^(user|key|jwt|cert):.{1,500}$' },
    role: BINDING.properties.role,
    namespace: NAMESPACE,
  },
} as const;

const PASSWORD = { type: 'string', minLength: 1, maxLength: 1024 } as const;

/** `POST /api/auth/login`. */
export const LOGIN_BODY = {
  type: 'object',
  additionalProperties: NO_EXTRA,
  required: ['username', 'password'],
  properties: { username: { type: 'string', minLength: 1, maxLength: 128 }, password: PASSWORD },
} as const;

const REFRESH_TOKEN = { type: 'string', minLength: 1, maxLength: 256 } as const;

/** `POST /api/auth/refresh`. */
export const REFRESH_BODY = {
  type: 'object',
  additionalProperties: NO_EXTRA,
  required: ['refreshToken'],
  properties: { refreshToken: REFRESH_TOKEN },
} as const;

/** `POST /api/auth/logout`: a refresh token, or nothing when an access token authenticates the call. */
export const LOGOUT_BODY = {
  type: ['object', 'null'],
  additionalProperties: NO_EXTRA,
  properties: { refreshToken: REFRESH_TOKEN },
} as const;

/** `POST /api/users`. */
export const USER_CREATE = {
  type: 'object',
  additionalProperties: NO_EXTRA,
  required: ['username', 'password'],
  properties: {
    username: { type: 'string', minLength: 1, maxLength: 128 },
    password: PASSWORD,
    roles: BINDINGS,
    disabled: { type: 'boolean' },
  },
} as const;

/** `PATCH /api/users/:id`. */
export const USER_PATCH = {
  type: 'object',
  additionalProperties: NO_EXTRA,
  minProperties: 1,
  properties: { roles: BINDINGS, disabled: { type: 'boolean' } },
} as const;

/** `PUT /api/users/:id/password`. */
export const PASSWORD_BODY = {
  type: 'object',
  additionalProperties: NO_EXTRA,
  required: ['password'],
  properties: { password: PASSWORD, currentPassword: PASSWORD },
} as const;

/** `POST /api/keys`. */
export const KEY_BODY = {
  type: 'object',
  additionalProperties: NO_EXTRA,
  required: ['name', 'bindings'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 128 },
    bindings: { ...BINDINGS, minItems: 1 },
    expiresAt: { type: 'string', format: 'date-time', maxLength: 64 },
    // An empty list would mean "from anywhere" to the authenticator but "from nowhere" to the
    // HTTP allow-list check; leaving the field out is how a key is made usable from anywhere.
    allowedCidrs: { type: 'array', minItems: 1, maxItems: 100, items: { type: 'string', maxLength: 64 } },
  },
} as const;

/** `:id` path parameters. */
export const ID_PARAMS = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 128 } },
} as const;
