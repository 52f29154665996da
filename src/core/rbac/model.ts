/**
 * Roles and actions of Gatehouse. Artifact roles (admin, publisher, consumer, auditor) and
 * data-gateway roles (operator, reader) share one model so that one binding table and one
 * `authorize` serve every door.
 */
export const ACTIONS = [
  // Core administration.
  'users:read',
  'users:write',
  'keys:read',
  'keys:write',
  'roles:read',
  'bindings:write',
  'audit:read',
  'config:read',
  'config:reload',
  'health:read',
  // Artifacts door.
  'artifacts:list',
  'artifacts:read',
  'artifacts:download',
  'artifacts:download-unapproved',
  'artifacts:upload',
  'artifacts:delete',
  'artifacts:scan',
  'artifacts:sign',
  'artifacts:override',
  // Registry door.
  'registry:pull',
  'registry:decisions:read',
  'registry:policy:test',
  'registry:cache:invalidate',
  // KV door.
  'kv:read',
  'kv:write',
  'kv:admin',
  // Edge door.
  'edge:read',
  'edge:write',
] as const;

export type Action = (typeof ACTIONS)[number];

export const ROLES = ['admin', 'publisher', 'consumer', 'auditor', 'operator', 'reader'] as const;
export type Role = (typeof ROLES)[number];

/** A role granted to a principal within a namespace (`*` for every namespace). */
export interface RoleBinding {
  readonly role: Role;
  readonly namespace: string;
}

export type PrincipalKind = 'user' | 'apikey' | 'token' | 'certificate' | 'anonymous';

/**
 * Who is calling, with the role bindings resolved at authentication, so that `authorize` is a
 * pure function of its arguments.
 */
export interface Principal {
  /** Stable id, e.g. `user:3f2a…`, `key:k_9x…`, `jwt:issuer#sub`, `cert:sha256:…`. */
  readonly id: string;
  readonly kind: PrincipalKind;
  /** Display name: user name, key name, token subject, certificate subject. */
  readonly name: string;
  readonly bindings: readonly RoleBinding[];
  /** When set, requests from other addresses are refused (API keys and roles may carry one). */
  readonly allowedCidrs?: readonly string[];
  /** Expiry of the credential in epoch milliseconds, when it has one. */
  readonly expiresAt?: number;
}

/** What an action is performed on. `namespace` is a repository, kv namespace or `*`. */
export interface Resource {
  readonly type: string;
  readonly namespace?: string;
  readonly id?: string;
}

export interface Decision {
  readonly allowed: boolean;
  /** Human reason: which binding allowed it, or why nothing did. */
  readonly reason: string;
  /** The binding that granted the action. */
  readonly binding?: RoleBinding;
}
