import { type Code, ConnectError } from '@connectrpc/connect';
import { ERROR_KINDS, errorDefinition, type GatewayError, toGatewayError } from '#core/errors';
import type { Logger } from '#core/log';

// Kinds whose cause lies on the server side: the client gets the catalogue title only, so no
// backend name, SQL or stack ever leaves the gateway (issue 5, item 8).
const SERVER_SIDE = new Set(['INTERNAL', 'UNKNOWN', 'UNAVAILABLE', 'DATA_LOSS', 'DEADLINE_EXCEEDED']);
/** The code of a call the client's own deadline or cancel ended (messages: the catalogue titles). */
export const CLIENT_ENDED = {
  deadline: 'GW_ERR_KV_DEADLINE_EXCEEDED',
  cancelled: 'GW_ERR_KV_CANCELLED',
} as const;
// Such a call ended by the client's doing: logged at debug like a refusal, not as a failure.
const ENDED_BY_CLIENT = new Set<string>(Object.values(CLIENT_ENDED));

/** Header that carries the stable error code, and the one that correlates with the server log. */
export const ERROR_CODE_HEADER = 'gatehouse-error-code';
export const ERROR_ID_HEADER = 'gatehouse-error-id';

/**
 * Turns anything thrown while serving a call into the ConnectError the client sees: the gRPC
 * status of the error's kind, a generic safe message, the stable code and the errorId. The full
 * error with its cause goes to the log under the same errorId. This is the kv door's only
 * error-to-response mapping (ARCHITECTURE.md: errors become responses once, at the boundary).
 */
export function toConnectError(
  thrown: unknown,
  log: Logger,
  extraHeaders: Readonly<Record<string, string>> = {},
): { readonly error: ConnectError; readonly gateway: GatewayError } {
  const gateway = toGatewayError(thrown);
  const serverSide = SERVER_SIDE.has(gateway.kind) && !ENDED_BY_CLIENT.has(gateway.code);
  const message = serverSide ? (errorDefinition(gateway.code)?.title ?? 'Internal error') : gateway.message;
  const metadata = new Headers({
    ...extraHeaders,
    ...gateway.headers,
    [ERROR_CODE_HEADER]: gateway.code,
    [ERROR_ID_HEADER]: gateway.errorId,
  });
  const fields = { code: gateway.code, errorId: gateway.errorId, details: gateway.details, error: thrown };
  if (serverSide) log.error('kv call failed', fields);
  else
    log.debug('kv call refused', { code: gateway.code, errorId: gateway.errorId, reason: gateway.message });
  return { error: new ConnectError(message, gateway.grpcCode as Code, metadata), gateway };
}

const STATUS_NAMES = new Map<number, string>([
  [0, 'OK'],
  ...Object.entries(ERROR_KINDS).map(([name, k]): [number, string] => [k.grpc, name]),
]);

/** The canonical name of a gRPC status code (`OK`, `PERMISSION_DENIED`), for the `status` metric label. */
export function statusName(code: number): string {
  return STATUS_NAMES.get(code) ?? 'UNKNOWN';
}
