import type { ErrorKind } from './kinds.ts';

/** One entry of the error catalogue; `docs/errors.md` is generated from these. */
export interface ErrorDefinition {
  readonly code: `GW_ERR_${string}`;
  readonly kind: ErrorKind;
  readonly title: string;
  readonly description: string;
  /** HTTP status when it differs from the kind's default mapping. */
  readonly httpStatus?: number;
}
