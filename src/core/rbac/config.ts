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
          'Role bindings added to those stored in the database; reloaded on file change or SIGHUP without a restart',
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
