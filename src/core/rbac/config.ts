import { array, type Infer, object, oneOf, string } from '#core/config';
import { ROLES } from './model.ts';

const NAMESPACE = /^(\*|[A-Za-z0-9][A-Za-z0-9._\-/]{0,252})$/;

const role = oneOf(ROLES, 'Role granted');
const namespace = string(
  'Namespace (repository, kv namespace) the role applies to, or "*" for every namespace',
  {
    pattern: NAMESPACE,
    format: 'a namespace name or "*"',
  },
);

/** One role in one namespace; `*` (every namespace) must be written explicitly. */
export const roleBindingSchema = object({ role, namespace }, 'A role granted in a namespace');

/** A binding of a subject to a role, as written in configuration. */
export const subjectBindingSchema = object(
  {
    subject: string(
      'Who gets the role: "user:<name>", "key:<id>", "jwt:<issuer name>#<sub>" or "cert:<principal>"',
      { pattern: /^(user|key|jwt|cert):.{1,500}$/, format: 'a subject such as "user:alice"' },
    ),
    role,
    namespace,
  },
  'A role binding seeded from configuration',
);

/** The `rbac` configuration section; `bindings` is dynamic (a reload swaps them atomically). */
export const rbacConfigSchema = object(
  {
    bindings: array(
      subjectBindingSchema,
      {
        description:
          'Role bindings added to those stored in the database; reloaded on file change, SIGHUP or POST /api/config/reload without a restart. A reload applies to the next request of every subject it names, also to sessions that logged in before it (an access token carries no roles the server trusts) and to API keys; no new login is needed',
        dynamic: true,
      },
      { default: [] },
    ),
  },
  'Role-based access control',
);

/** Parsed `rbac` section. */
export type RbacConfig = Infer<typeof rbacConfigSchema>;
/** A binding from configuration. */
export type SubjectBinding = Infer<typeof subjectBindingSchema>;

/** The role and namespace pairs of each subject named in a configuration. */
function bySubject(config: RbacConfig): Map<string, Set<string>> {
  const map = new Map<string, Set<string>>();
  for (const b of config.bindings) {
    const set = map.get(b.subject) ?? new Set<string>();
    set.add(`${b.role}\u0000${b.namespace}`);
    map.set(b.subject, set);
  }
  return map;
}

const sameSet = (x: ReadonlySet<string> | undefined, y: ReadonlySet<string> | undefined) =>
  x !== undefined && y !== undefined && x.size === y.size && [...x].every((v) => y.has(v));

/** The subjects whose configuration bindings differ between two `rbac` sections, sorted. */
export function changedSubjects(next: RbacConfig, previous: RbacConfig): string[] {
  const a = bySubject(next);
  const b = bySubject(previous);
  return [...new Set([...a.keys(), ...b.keys()])].filter((s) => !sameSet(a.get(s), b.get(s))).toSorted();
}
