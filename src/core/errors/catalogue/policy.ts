import type { ErrorDefinition } from '../definition.ts';

/** Errors of the policy area; codes start with GW_ERR_POLICY_. */
export const POLICY_ERRORS = [
  {
    code: 'GW_ERR_POLICY_DENIED',
    kind: 'PERMISSION_DENIED',
    title: 'Refused by policy',
    description:
      'A policy rule refused this package version or artifact; the message gives each failing rule and its reason, and `details.allowAt` says when a temporary refusal (minimum age) lapses.',
  },
] as const satisfies readonly ErrorDefinition[];
