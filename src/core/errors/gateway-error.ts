import { randomUUID } from 'node:crypto';
import { CATALOGUE } from './catalogue/index.ts';
import type { ErrorDefinition } from './definition.ts';
import { ERROR_KINDS, type ErrorKind } from './kinds.ts';

export type ErrorCode = `GW_ERR_${string}`;

const BY_CODE: ReadonlyMap<string, ErrorDefinition> = new Map(CATALOGUE.map((d) => [d.code, d]));

export interface GatewayErrorOptions {
  /** A client-safe sentence that replaces the catalogue title as the problem `detail`. */
  readonly message?: string;
  /** Client-safe structured facts (field names, limits, retry hints). Never secrets or internals. */
  readonly details?: Readonly<Record<string, unknown>>;
  /** The original failure; logged with the errorId, never sent to a client. */
  readonly cause?: unknown;
  /** Overrides the HTTP status of the catalogue entry (e.g. 403 vs 404 for a door's protocol). */
  readonly httpStatus?: number;
  /** Extra response headers (Retry-After, WWW-Authenticate, npm-notice). */
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * The one error class of Gatehouse. `code` is stable and documented in docs/errors.md,
 * `kind` is a gRPC canonical code, `message` and `details` are safe to show to clients.
 */
export class GatewayError extends Error {
  override readonly name = 'GatewayError';
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly details: Readonly<Record<string, unknown>>;
  readonly httpStatus: number;
  readonly headers: Readonly<Record<string, string>>;
  /** Correlates the client's response with the server log line. */
  readonly errorId: string;

  constructor(code: ErrorCode, options: GatewayErrorOptions = {}) {
    const definition = BY_CODE.get(code);
    super(options.message ?? definition?.title ?? 'Internal error', { cause: options.cause });
    if (definition === undefined) {
      // An unregistered code is a programmer mistake; the catalogue test finds it, and at run
      // time it must never leak as a made-up code, so it degrades to an internal error.
      this.code = 'GW_ERR_INTERNAL';
      this.kind = 'INTERNAL';
    } else {
      this.code = code;
      this.kind = definition.kind;
    }
    this.details = options.details ?? {};
    this.httpStatus = options.httpStatus ?? definition?.httpStatus ?? ERROR_KINDS[this.kind].http;
    this.headers = options.headers ?? {};
    this.errorId = randomUUID();
  }

  /** The gRPC status code of this error's kind. */
  get grpcCode(): number {
    return ERROR_KINDS[this.kind].grpc;
  }
}

/** True for a GatewayError, also across realms and duplicate module copies. */
export function isGatewayError(value: unknown): value is GatewayError {
  return (
    value instanceof GatewayError ||
    (value instanceof Error && value.name === 'GatewayError' && 'code' in value)
  );
}

/**
 * Turns anything thrown into a GatewayError. Unknown errors become GW_ERR_INTERNAL with the
 * original kept as `cause` for the log; their message never reaches a client.
 */
export function toGatewayError(value: unknown): GatewayError {
  if (isGatewayError(value)) return value;
  return new GatewayError('GW_ERR_INTERNAL', { cause: value });
}

/** Looks a code up in the catalogue. */
export function errorDefinition(code: string): ErrorDefinition | undefined {
  return BY_CODE.get(code);
}
