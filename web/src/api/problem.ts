/** An RFC 9457 problem document as Gatehouse sends it (`code` and `errorId` are extensions). */
export interface Problem {
  readonly type?: string;
  readonly title?: string;
  readonly status?: number;
  readonly detail?: string;
  readonly code?: string;
  readonly errorId?: string;
  readonly details?: unknown;
}

/** Codes the console makes up itself, for failures that never reached the server. */
export const CLIENT_CODES = {
  network: 'CLIENT_NETWORK',
  aborted: 'CLIENT_ABORTED',
  sessionExpired: 'CLIENT_SESSION_EXPIRED',
  badResponse: 'CLIENT_BAD_RESPONSE',
  downloadFailed: 'CLIENT_DOWNLOAD_FAILED',
} as const;

/** A failed API call, carrying what the user needs to read and what support needs to find it. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly errorId: string | undefined;
  readonly title: string;
  readonly details: unknown;
  readonly retryAfter: number | undefined;
  /** The parsed JSON body of the answer, for endpoints whose failure answer is a document (503 health). */
  readonly body: unknown;

  constructor(init: {
    status: number;
    code: string;
    message: string;
    title?: string;
    errorId?: string | undefined;
    details?: unknown;
    retryAfter?: number | undefined;
    body?: unknown;
  }) {
    super(init.message);
    this.name = 'ApiError';
    this.status = init.status;
    this.code = init.code;
    this.title = init.title ?? init.message;
    this.errorId = init.errorId;
    this.details = init.details;
    this.retryAfter = init.retryAfter;
    this.body = init.body;
  }
}

function retryAfterOf(response: Response): number | undefined {
  const value = response.headers.get('retry-after');
  if (value === null) return undefined;
  const seconds = Number(value);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}

const STATUS_TEXT: Record<number, string> = {
  401: 'You need to sign in',
  403: 'You do not have permission to do this',
  404: 'Not found',
  413: 'The upload is too large',
  429: 'Too many requests; wait a moment and try again',
  502: 'The gateway could not reach an upstream service',
  503: 'The service is unavailable right now; try again shortly',
};

/** Turns a non-2xx response into an ApiError, reading problem+json when the server sent it. */
export async function errorFromResponse(response: Response): Promise<ApiError> {
  const type = response.headers.get('content-type') ?? '';
  let problem: Problem = {};
  if (type.includes('json')) {
    try {
      problem = (await response.json()) as Problem;
    } catch {
      problem = {};
    }
  }
  const fallback = STATUS_TEXT[response.status] ?? `Request failed with status ${response.status}`;
  return new ApiError({
    status: response.status,
    code: problem.code ?? `HTTP_${response.status}`,
    message: problem.detail ?? problem.title ?? fallback,
    title: problem.title ?? fallback,
    errorId: problem.errorId ?? response.headers.get('x-request-id') ?? undefined,
    details: problem.details,
    retryAfter: retryAfterOf(response),
    body: problem,
  });
}

/** The error for a request that never got an answer (server down, connection reset, offline). */
export function networkError(cause: unknown): ApiError {
  if (cause instanceof DOMException && cause.name === 'AbortError') {
    return new ApiError({ status: 0, code: CLIENT_CODES.aborted, message: 'The request was cancelled' });
  }
  return new ApiError({
    status: 0,
    code: CLIENT_CODES.network,
    message:
      'Cannot reach the Gatehouse server. Check that it is running and your network is up, then try again',
    title: 'Server unreachable',
  });
}

/** What to tell the user to do next, by status. */
export function adviceFor(error: ApiError): string | undefined {
  if (error.code === CLIENT_CODES.network) return 'Your input is kept; retry when the server is back.';
  if (error.code === CLIENT_CODES.sessionExpired) return 'Sign in again; you will come back to this page.';
  if (error.status === 403) return 'Ask an administrator for a role that allows it.';
  if (error.status === 429 || error.status === 503)
    return error.retryAfter === undefined
      ? 'Try again in a moment.'
      : `Try again in ${error.retryAfter} seconds.`;
  if (error.status >= 500) return 'If it persists, give the error id to your administrator.';
  return undefined;
}
