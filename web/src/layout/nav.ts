import type { Action } from '../auth/principal.ts';

export interface NavItem {
  readonly to: string;
  readonly label: string;
  /** Shown when the principal holds any of these. */
  readonly anyOf: readonly Action[];
}

/** Navigation, each entry gated by the permission its page needs. */
export const NAV: readonly NavItem[] = [
  { to: '/artifacts', label: 'Artifacts', anyOf: ['artifacts:list'] },
  { to: '/registry', label: 'Registry', anyOf: ['registry:decisions:read', 'registry:policy:test'] },
  { to: '/audit', label: 'Audit log', anyOf: ['audit:read'] },
  { to: '/admin/users', label: 'Users', anyOf: ['users:read'] },
  { to: '/admin/keys', label: 'API keys', anyOf: ['keys:read'] },
  { to: '/admin/roles', label: 'Roles', anyOf: ['bindings:write'] },
  { to: '/edge', label: 'Edge routes', anyOf: ['edge:read'] },
  { to: '/health', label: 'Health', anyOf: ['health:read'] },
];

/** The first page a principal may see, for the landing redirect. */
export function homeFor(allowed: (action: Action) => boolean): string {
  return NAV.find((item) => item.anyOf.some(allowed))?.to ?? '/health';
}
