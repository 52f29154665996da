import type { ErrorDefinition } from '../definition.ts';

/** Errors of the kv area; codes start with GW_ERR_KV_. */
export const KV_ERRORS = [
  {
    code: 'GW_ERR_KV_INVALID_ARGUMENT',
    kind: 'INVALID_ARGUMENT',
    title: 'Invalid kv request',
    description:
      'A field of the request failed validation (namespace, key, value, TTL, metadata, page size or token); the message and `details.field` name it.',
  },
  {
    code: 'GW_ERR_KV_MESSAGE_MALFORMED',
    kind: 'INVALID_ARGUMENT',
    title: 'Malformed kv request message',
    description:
      'The request could not be read as one message: a truncated or repeated gRPC frame, unknown frame flags, a compressed frame without `grpc-encoding`, bytes that are not the protobuf message, JSON that is not the message (Connect, gRPC-Web, gRPC+JSON), or a malformed `grpc-timeout` header.',
  },
  {
    code: 'GW_ERR_KV_UNIMPLEMENTED',
    kind: 'UNIMPLEMENTED',
    title: 'Unknown kv method or encoding',
    description:
      'The path names no method of `gatehouse.kv.v1.KvService`, or the message uses a `grpc-encoding` other than identity (the door accepts no compressed messages).',
  },
  {
    code: 'GW_ERR_KV_PAYLOAD_TOO_LARGE',
    kind: 'RESOURCE_EXHAUSTED',
    title: 'Payload too large',
    description:
      "A BatchSet's values together, or the whole request message, exceed the configured size limit (a single value over `maxValueSize` is `GW_ERR_KV_INVALID_ARGUMENT`).",
    httpStatus: 413,
  },
  {
    code: 'GW_ERR_KV_VERSION_CONFLICT',
    kind: 'ABORTED',
    title: 'Version conflict',
    description:
      'A compare-and-set found another version than `expected_version`, or (NATS) a write or expiry change kept losing the race against other writers of the key; read the key again and retry the write.',
  },
  {
    code: 'GW_ERR_KV_BACKEND_UNAVAILABLE',
    kind: 'UNAVAILABLE',
    title: 'Backend unavailable',
    description:
      'The backend of the namespace failed or did not answer within the driver deadline; nothing is reported written unless the backend confirmed it.',
  },
  {
    code: 'GW_ERR_KV_DEADLINE_EXCEEDED',
    kind: 'DEADLINE_EXCEEDED',
    title: 'Deadline exceeded',
    description:
      "The client's own deadline (`grpc-timeout`, `connect-timeout-ms`) passed before the call completed; the backend call was stopped, and a write may or may not have landed (read it back). A deadline above 2^31-1 ms (about 24.8 days) counts as none.",
  },
  {
    code: 'GW_ERR_KV_CANCELLED',
    kind: 'CANCELLED',
    title: 'Call cancelled',
    description:
      'The client cancelled the call or went away before it completed; the backend call was stopped, and a write may or may not have landed. Seen in metrics and the debug log only: nobody is left to answer.',
  },
  {
    code: 'GW_ERR_KV_DATA_CORRUPT',
    kind: 'DATA_LOSS',
    title: 'Stored value unreadable',
    description:
      'A stored record could not be decoded (for example a chunk of a large NATS value is missing).',
  },
  {
    code: 'GW_ERR_KV_BANDWIDTH_EXCEEDED',
    kind: 'RESOURCE_EXHAUSTED',
    title: 'Namespace bandwidth exceeded',
    description: 'The namespace used up its configured bytes per second; `retry-after` says when to retry.',
  },
] as const satisfies readonly ErrorDefinition[];
