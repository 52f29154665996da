import { roleAllows } from './permissions.ts';
import type { Action, Decision, Principal, Resource, RoleBinding } from './model.ts';

/** The namespace that stands for "every namespace"; it only ever comes from an explicit binding. */
export const ALL_NAMESPACES = '*';

/**
 * True when a binding's namespace covers the resource's. A resource without a namespace is
 * global (users, keys, audit, config) and is covered only by a `*` binding, so a role bound
 * to one repository can never administer the whole gateway.
 */
export function namespaceCovers(bindingNamespace: string, resourceNamespace: string | undefined): boolean {
  if (bindingNamespace === ALL_NAMESPACES) return true;
  if (resourceNamespace === undefined || resourceNamespace === ALL_NAMESPACES) return false;
  return bindingNamespace === resourceNamespace;
}

function describeResource(resource: Resource): string {
  const id = resource.id === undefined ? resource.type : `${resource.type}:${resource.id}`;
  return resource.namespace === undefined ? `"${id}"` : `"${id}" in namespace "${resource.namespace}"`;
}

/**
 * Decides whether `principal` may perform `action` on `resource`. Pure: it looks only at the
 * bindings the principal carries, so every door gets the same answer for the same facts and
 * the decision can be audited with its reason.
 */
export function authorize(principal: Principal, action: Action, resource: Resource): Decision {
  let matched: RoleBinding | undefined;
  for (const binding of principal.bindings) {
    if (!roleAllows(binding.role, action)) continue;
    if (!namespaceCovers(binding.namespace, resource.namespace)) continue;
    matched = binding;
    // A `*` binding is the broadest reason; prefer a narrower one when both apply.
    if (binding.namespace !== ALL_NAMESPACES) break;
  }
  if (matched === undefined) {
    return {
      allowed: false,
      reason: `No role binding of "${principal.name}" grants "${action}" on ${describeResource(resource)}`,
    };
  }
  return {
    allowed: true,
    reason: `Role "${matched.role}" in namespace "${matched.namespace}" grants "${action}"`,
    binding: matched,
  };
}
