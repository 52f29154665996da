/**
 * core/errors: the single error model. Import from `#core/errors` only.
 * @module
 */
export { CATALOGUE } from './catalogue/index.ts';
export type { ErrorDefinition } from './definition.ts';
export {
  type ErrorCode,
  errorDefinition,
  GatewayError,
  type GatewayErrorOptions,
  isGatewayError,
  toGatewayError,
} from './gateway-error.ts';
export { ERROR_KINDS, type ErrorKind } from './kinds.ts';
export { type ProblemDocument, problemType, toProblem } from './problem.ts';
