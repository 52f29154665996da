import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { type ErrorCode, GatewayError, isGatewayError, toGatewayError, toProblem } from '#core/errors';
import type { Logger } from '#core/log';

/** The media type of RFC 9457 problem documents. */
export const PROBLEM_JSON = 'application/problem+json; charset=utf-8';

interface ValidationItem {
  readonly instancePath?: string;
  readonly message?: string;
  readonly params?: Readonly<Record<string, unknown>>;
}

function validationErrors(error: FastifyError): { path: string; message: string }[] {
  const context = error.validationContext ?? 'request';
  return ((error.validation ?? []) as readonly ValidationItem[]).map((item) => {
    const missing = item.params?.['missingProperty'];
    const extra = item.params?.['additionalProperty'];
    const pointer = item.instancePath ?? '';
    const leaf = typeof missing === 'string' ? `/${missing}` : typeof extra === 'string' ? `/${extra}` : '';
    return { path: `${context}${pointer}${leaf}`, message: item.message ?? 'is not valid' };
  });
}

/** Fastify error codes with the catalogue code and the fixed sentence that replace them. */
const FRAMEWORK_ERRORS: Readonly<Record<string, readonly [ErrorCode, string, number?]>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [
    'GW_ERR_REQUEST_TOO_LARGE',
    'The request body exceeds the limit of this endpoint',
  ],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [
    'GW_ERR_REQUEST_UNSUPPORTED_MEDIA',
    'This endpoint does not accept the request Content-Type',
  ],
  FST_ERR_CTP_INVALID_JSON_BODY: ['GW_ERR_REQUEST_INVALID', 'The request body is not valid JSON'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [
    'GW_ERR_REQUEST_INVALID',
    'The request body is empty but its Content-Type is JSON',
  ],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [
    'GW_ERR_REQUEST_INVALID',
    'The Content-Length does not match the body',
  ],
  FST_ERR_BAD_URL: ['GW_ERR_REQUEST_INVALID', 'The request URL is malformed'],
  // RFC 9110 section 15.5.15: a path segment above the router's maxParamLength.
  FST_ERR_MAX_PARAM_LENGTH: ['GW_ERR_REQUEST_INVALID', 'A segment of the request path is too long', 414],
  FST_ERR_ASYNC_CONSTRAINT: ['GW_ERR_REQUEST_INVALID', 'The request URL is malformed'],
};

/**
 * Maps Fastify's own errors to catalogue codes. Their messages are replaced by fixed sentences
 * because some embed parser internals (a JSON SyntaxError position, a media-type string).
 */
function fromFramework(error: FastifyError): GatewayError | undefined {
  if (Array.isArray(error.validation)) {
    const errors = validationErrors(error);
    const first = errors[0] === undefined ? '' : `: ${errors[0].path} ${errors[0].message}`;
    return new GatewayError('GW_ERR_REQUEST_INVALID', {
      message: `The request ${error.validationContext ?? 'input'} failed validation${first}`,
      details: { errors },
    });
  }
  const known = error.code === undefined ? undefined : FRAMEWORK_ERRORS[error.code];
  if (known !== undefined) {
    const [code, message, httpStatus] = known;
    return new GatewayError(code, { message, ...(httpStatus === undefined ? {} : { httpStatus }) });
  }
  // Other client errors from Fastify or its parsers carry a 4xx status; they are the client's
  // fault, so they are reported as invalid requests without their internal message.
  const status = error.statusCode;
  if (
    typeof error.code === 'string' &&
    error.code.startsWith('FST_') &&
    status !== undefined &&
    status >= 400 &&
    status < 500
  ) {
    return new GatewayError('GW_ERR_REQUEST_INVALID', { httpStatus: status });
  }
  if (error instanceof SyntaxError && status === 400) {
    return new GatewayError('GW_ERR_REQUEST_INVALID', { message: 'The request body cannot be parsed' });
  }
  return undefined;
}

/** Turns anything thrown during a request into a GatewayError (unknown errors become GW_ERR_INTERNAL). */
export function classify(error: unknown): GatewayError {
  if (isGatewayError(error)) return error;
  if (error instanceof Error && 'code' in error) {
    const mapped = fromFramework(error as FastifyError);
    if (mapped !== undefined) return mapped;
  }
  return toGatewayError(error);
}

/**
 * Sends `error` as problem+json. Server-side failures are logged with the cause and the same
 * errorId that the client sees; client errors are logged at debug level only.
 */
export function sendProblem(
  log: Logger,
  request: FastifyRequest,
  reply: FastifyReply,
  error: unknown,
): FastifyReply {
  const gatewayError = classify(error);
  const fields = {
    errorId: gatewayError.errorId,
    code: gatewayError.code,
    requestId: request.id,
    method: request.method,
    route: request.routeOptions.url ?? request.url,
  };
  if (gatewayError.httpStatus >= 500)
    log.error('Request failed', { ...fields, cause: gatewayError.cause ?? error });
  else log.debug('Request refused', { ...fields, detail: gatewayError.message });
  if (reply.sent) return reply;
  reply.code(gatewayError.httpStatus);
  for (const [name, value] of Object.entries(gatewayError.headers)) reply.header(name, value);
  reply.header('content-type', PROBLEM_JSON);
  return reply.send(JSON.stringify(toProblem(gatewayError, request.url.split('?')[0])));
}
