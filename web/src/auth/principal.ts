import { ROLE_PERMISSIONS } from '@gatehouse/rbac';

export type Role = keyof typeof ROLE_PERMISSIONS;
export type Action =
  typeof ROLE_PERMISSIONS extends Readonly<Record<string, ReadonlySet<infer A>>> ? A : never;

export interface Binding {
  readonly role: Role;
  readonly namespace: string;
}

/** Who is signed in, as far as the console needs to know to shape its navigation. */
export interface Me {
  readonly id: string;
  readonly name: string;
  readonly bindings: readonly Binding[];
}

const isRole = (r: unknown): r is Role => typeof r === 'string' && Object.hasOwn(ROLE_PERMISSIONS, r);

/** Accepts `[{role, namespace}]` or `["role:namespace" | "role"]`. */
export function parseBindings(raw: unknown): Binding[] {
  if (!Array.isArray(raw)) return [];
  const out: Binding[] = [];
  for (const entry of raw) {
    if (typeof entry === 'string') {
      const [role, namespace = '*'] = entry.split(':', 2);
      if (isRole(role)) out.push({ role, namespace });
    } else if (typeof entry === 'object' && entry !== null) {
      // Access tokens carry `{ role, ns }`; the API answers `{ role, namespace }`.
      const { role, namespace, ns } = entry as { role?: unknown; namespace?: unknown; ns?: unknown };
      const scope = typeof namespace === 'string' ? namespace : ns;
      if (isRole(role)) out.push({ role, namespace: typeof scope === 'string' ? scope : '*' });
    }
  }
  return out;
}

/** Reads the payload of a JWT without verifying it: only for display, the server decides. */
export function decodeJwtPayload(token: string): Record<string, unknown> | undefined {
  const part = token.split('.')[1];
  if (part === undefined) return undefined;
  try {
    const base64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const json = new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)));
    const payload = JSON.parse(json) as unknown;
    return typeof payload === 'object' && payload !== null ? (payload as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The principal as the access token describes it, when the server has no `/api/auth/me`. */
export function meFromToken(token: string): Me | undefined {
  const p = decodeJwtPayload(token);
  if (p === undefined) return undefined;
  const name = [p['name'], p['preferred_username'], p['username'], p['sub']].find(
    (v) => typeof v === 'string',
  );
  return {
    id: typeof p['sub'] === 'string' ? `user:${p['sub']}` : String(name ?? 'unknown'),
    name: typeof name === 'string' ? name : 'unknown',
    bindings: parseBindings(p['bindings'] ?? p['roles']),
  };
}

/** Normalizes a `/api/auth/me` answer. */
export function meFromAnswer(raw: unknown): Me | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  const user = (typeof r['principal'] === 'object' && r['principal'] !== null ? r['principal'] : r) as Record<
    string,
    unknown
  >;
  const name = [user['name'], user['username'], user['id']].find((v) => typeof v === 'string');
  if (typeof name !== 'string') return undefined;
  return {
    id: typeof user['id'] === 'string' ? user['id'] : name,
    name,
    bindings: parseBindings(user['bindings'] ?? user['roles']),
  };
}

/**
 * True when some binding's role carries the action. Namespace scoping is the server's job; the
 * console only hides what can never be allowed.
 */
export function can(me: Me | undefined, action: Action): boolean {
  return me?.bindings.some((b) => ROLE_PERMISSIONS[b.role].has(action)) ?? false;
}

/** Roles shown in the user menu, deduplicated. */
export function rolesOf(me: Me | undefined): Role[] {
  return [...new Set(me?.bindings.map((b) => b.role) ?? [])];
}
