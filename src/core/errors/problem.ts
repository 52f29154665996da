import { errorDefinition, type GatewayError } from './gateway-error.ts';

/** An RFC 9457 problem document as Gatehouse sends it. */
export interface ProblemDocument {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code: string;
  readonly errorId: string;
  readonly instance?: string;
  readonly [extension: string]: unknown;
}

/** The problem `type` of a code: a URN naming the entry of docs/errors.md (RFC 9457 section 3.1.1). */
export function problemType(code: string): string {
  return `urn:gatehouse:error:${code}`;
}

/**
 * Renders a GatewayError as RFC 9457 `application/problem+json`. Only the safe message and
 * details are included; the cause stays in the server log.
 */
export function toProblem(error: GatewayError, instance?: string): ProblemDocument {
  const title = errorDefinition(error.code)?.title ?? 'Internal error';
  return {
    ...error.details,
    type: problemType(error.code),
    title,
    status: error.httpStatus,
    detail: error.message,
    code: error.code,
    errorId: error.errorId,
    ...(instance === undefined ? {} : { instance }),
  };
}
