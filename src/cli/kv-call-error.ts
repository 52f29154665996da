import { Code, type ConnectError } from '@connectrpc/connect';
import { CliError } from './client.ts';
import { EXIT } from './framework.ts';
import { networkReason } from './network-errors.ts';

function systemCode(error: ConnectError): string | undefined {
  const code = (error.cause as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Why no server answered, in one line for people, or undefined when a server did answer (its
 * status is then the error). An answer always carries headers; a failed connection, TLS
 * handshake or HTTP/2 session carries none, and OpenSSL's own text (a source path, hex codes)
 * is replaced by the reason and the stable system code.
 */
function unreachableReason(error: ConnectError, url: string): string | undefined {
  if ([...error.metadata.keys()].length > 0) return undefined;
  const code = systemCode(error);
  // An http:// URL on a TLS listener: the server drops the plain-text HTTP/2 connection, seen
  // as a close or, depending on timing, a reset.
  const dropped =
    code === 'ECONNRESET' ||
    code === 'EPIPE' ||
    (code === undefined && (error.code === Code.Canceled || error.code === Code.Unavailable));
  if (dropped && url.startsWith('http:')) {
    return 'the connection closed without an answer; a kv listener speaks TLS: use an https:// URL';
  }
  if (code !== undefined) {
    const reason =
      networkReason(code, 'give the CA that signed it with --ca') ??
      (error.rawMessage.split('\n')[0] ?? '').slice(0, 200);
    return `${reason} (${code})`;
  }
  if (error.code === Code.DeadlineExceeded) return 'no answer before the deadline';
  if (error.code === Code.Canceled || error.code === Code.Unavailable)
    return 'the connection closed without an answer';
  return undefined;
}

/**
 * The CLI's error for a failed kv call: an unreachable listener as `GW_ERR_CLI_NO_SERVER` naming
 * the URL, as other commands report the server; a gRPC status with the server's error code and
 * id and the exit code of its kind.
 */
export function kvCallError(error: ConnectError, url: string): CliError {
  const local = systemCode(error);
  if (local?.startsWith('ERR_OSSL_') === true && [...error.metadata.keys()].length === 0) {
    // OpenSSL refused our own PEM files before any byte was sent: not the listener's fault.
    return new CliError(
      `Cannot connect to "${url}": the --ca, --cert or --key file is not a usable PEM certificate or key (${local})`,
      { code: 'GW_ERR_TLS_INVALID' },
    );
  }
  const unreachable = unreachableReason(error, url);
  if (unreachable !== undefined) {
    return new CliError(`Cannot reach the Gatehouse kv listener at "${url}": ${unreachable}`, {
      code: 'GW_ERR_CLI_NO_SERVER',
    });
  }
  const code = error.metadata.get('gatehouse-error-code') ?? undefined;
  const errorId = error.metadata.get('gatehouse-error-id') ?? undefined;
  const exitCode =
    error.code === Code.Unauthenticated
      ? EXIT.auth
      : error.code === Code.PermissionDenied
        ? EXIT.denied
        : EXIT.error;
  return new CliError(error.rawMessage, {
    exitCode,
    ...(code === undefined ? {} : { code }),
    ...(errorId === undefined ? {} : { errorId }),
  });
}
