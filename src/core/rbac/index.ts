/**
 * core/rbac: roles, actions, bindings and the pure `authorize`.
 * @module
 */
/** Roles, actions, principals and decisions: the one model every door shares. */
export {
  type Action,
  ACTIONS,
  type Decision,
  type Principal,
  type PrincipalKind,
  type Resource,
  type Role,
  type RoleBinding,
  ROLES,
} from './model.ts';
/** Decides whether a principal may perform an action on a resource; pure and auditable. */
export { ALL_NAMESPACES, authorize, namespaceCovers } from './authorize.ts';
/** The permission set of every role, frozen. */
export { ROLE_PERMISSIONS, roleAllows } from './permissions.ts';
/** The `rbac` config section and the binding schema other sections reuse. */
export {
  changedSubjects,
  type RbacConfig,
  rbacConfigSchema,
  roleBindingSchema,
  type SubjectBinding,
  subjectBindingSchema,
} from './config.ts';
/** Role bindings stored in the database (module `core-rbac`) plus the dynamic config bindings. */
export {
  type BindingStore,
  createBindingStore,
  RBAC_MIGRATIONS,
  type StoredBinding,
} from './binding-store.ts';
