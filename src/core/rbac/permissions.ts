import { ACTIONS, type Action, type Role } from './model.ts';

const PUBLISHER: readonly Action[] = [
  'health:read',
  'roles:read',
  'artifacts:list',
  'artifacts:read',
  'artifacts:download',
  'artifacts:upload',
  'artifacts:sign',
  'registry:pull',
];

const CONSUMER: readonly Action[] = [
  'health:read',
  'roles:read',
  'artifacts:list',
  'artifacts:read',
  'artifacts:download',
  'registry:pull',
];

// Auditors read everything (metadata, decisions, audit logs, routes, data) but never change
// anything and never fetch content that policy has not approved.
const AUDITOR: readonly Action[] = [
  'health:read',
  'roles:read',
  'users:read',
  'keys:read',
  'audit:read',
  'config:read',
  'artifacts:list',
  'artifacts:read',
  'artifacts:download',
  'registry:pull',
  'registry:decisions:read',
  'kv:read',
  'edge:read',
];

const OPERATOR: readonly Action[] = [
  'health:read',
  'roles:read',
  'kv:read',
  'kv:write',
  'kv:admin',
  'edge:read',
  'edge:write',
];

const READER: readonly Action[] = ['health:read', 'roles:read', 'kv:read', 'edge:read'];

/**
 * The permission set of every role. Frozen sets, so a caller can never widen a role at run
 * time; the exhaustive table in authorize.test.ts pins each cell.
 */
export const ROLE_PERMISSIONS: Readonly<Record<Role, ReadonlySet<Action>>> = Object.freeze({
  admin: Object.freeze(new Set<Action>(ACTIONS)),
  publisher: Object.freeze(new Set(PUBLISHER)),
  consumer: Object.freeze(new Set(CONSUMER)),
  auditor: Object.freeze(new Set(AUDITOR)),
  operator: Object.freeze(new Set(OPERATOR)),
  reader: Object.freeze(new Set(READER)),
});

/** True when `role` carries `action` somewhere (namespace scoping is `authorize`'s job). */
export function roleAllows(role: Role, action: Action): boolean {
  return ROLE_PERMISSIONS[role].has(action);
}
