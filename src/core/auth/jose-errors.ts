import { errors } from 'jose';
import { GatewayError, isGatewayError } from '#core/errors';

/**
 * Maps a token verification failure to the catalogued auth error. Expired and not-yet-valid
 * tokens are GW_ERR_AUTH_TOKEN_EXPIRED (the client should refresh); everything else,
 * including bad signatures and disallowed algorithms, is GW_ERR_AUTH_TOKEN_INVALID. The jose
 * message goes to `cause` only.
 */
export function tokenError(error: unknown, what: string): GatewayError {
  if (isGatewayError(error)) return error;
  if (error instanceof errors.JWTExpired) {
    return new GatewayError('GW_ERR_AUTH_TOKEN_EXPIRED', {
      message: `The ${what} has expired`,
      cause: error,
    });
  }
  if (error instanceof errors.JWTClaimValidationFailed && error.claim === 'nbf') {
    return new GatewayError('GW_ERR_AUTH_TOKEN_EXPIRED', {
      message: `The ${what} is not valid yet`,
      cause: error,
    });
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    return new GatewayError('GW_ERR_AUTH_TOKEN_INVALID', {
      message: `The ${what} has a wrong "${error.claim}" claim`,
      details: { claim: error.claim },
      cause: error,
    });
  }
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) {
    return new GatewayError('GW_ERR_AUTH_TOKEN_INVALID', {
      message: `The ${what} uses an algorithm that is not allowed`,
      cause: error,
    });
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return new GatewayError('GW_ERR_AUTH_TOKEN_INVALID', {
      message: `The ${what} signature is not valid`,
      cause: error,
    });
  }
  if (error instanceof errors.JWKSNoMatchingKey) {
    return new GatewayError('GW_ERR_AUTH_TOKEN_INVALID', {
      message: `The ${what} is signed with an unknown key`,
      cause: error,
    });
  }
  return new GatewayError('GW_ERR_AUTH_TOKEN_INVALID', { message: `The ${what} is malformed`, cause: error });
}
