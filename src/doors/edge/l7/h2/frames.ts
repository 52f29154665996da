/**
 * HTTP/2 framing (RFC 9113 §4, §6): frame types, flags, error codes, the errors a peer's frames
 * raise, a frame reader that enforces the frame size limit, and frame builders.
 */

export const FRAME = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PUSH_PROMISE: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;

export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;

/** RFC 9113 §7. */
export const ERROR = {
  NO_ERROR: 0,
  PROTOCOL_ERROR: 1,
  INTERNAL_ERROR: 2,
  FLOW_CONTROL_ERROR: 3,
  STREAM_CLOSED: 5,
  FRAME_SIZE_ERROR: 6,
  REFUSED_STREAM: 7,
  CANCEL: 8,
  COMPRESSION_ERROR: 9,
  ENHANCE_YOUR_CALM: 11,
} as const;

/** RFC 9113 §6.5.2. */
export const SETTING = {
  HEADER_TABLE_SIZE: 1,
  ENABLE_PUSH: 2,
  MAX_CONCURRENT_STREAMS: 3,
  INITIAL_WINDOW_SIZE: 4,
  MAX_FRAME_SIZE: 5,
  MAX_HEADER_LIST_SIZE: 6,
} as const;

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const DEFAULT_WINDOW = 65_535;
export const MAX_WINDOW = 0x7fffffff;
export const DEFAULT_MAX_FRAME = 16_384;
export const FRAME_HEADER = 9;

/** A connection error (RFC 9113 §5.4.1): GOAWAY with `code`, then close. */
export class ConnectionError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

/** A stream error (RFC 9113 §5.4.2): RST_STREAM with `code` on `streamId`. */
export class StreamError extends Error {
  readonly code: number;
  readonly streamId: number;
  constructor(streamId: number, code: number, message: string) {
    super(message);
    this.code = code;
    this.streamId = streamId;
  }
}

/** A frame as read (tests and tools keep frames whole; the relay handles them as they come). */
export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly id: number;
  readonly payload: Buffer;
}

/** Receives each complete frame; `payload` is a view valid until the handler returns or keeps it. */
export type FrameHandler = (type: number, flags: number, streamId: number, payload: Buffer) => void;

/**
 * Cuts a byte stream into frames. A frame longer than `maxFrameSize` (the SETTINGS_MAX_FRAME_SIZE
 * we announced) is a FRAME_SIZE_ERROR (§4.2) raised before its payload is buffered.
 */
export class FrameReader {
  /** Chunks of an incomplete frame, joined only once the frame is complete (no O(n²) copying). */
  #parts: Buffer[] = [];
  #partsLength = 0;
  /** Octets the first incomplete frame needs (its header until the header is complete). */
  #need = 0;
  readonly #maxFrameSize: number;
  readonly #onFrame: FrameHandler;

  constructor(maxFrameSize: number, onFrame: FrameHandler) {
    this.#maxFrameSize = maxFrameSize;
    this.#onFrame = onFrame;
  }

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.#partsLength;
  }

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.#parts.length > 0) {
      this.#parts.push(chunk);
      this.#partsLength += chunk.length;
      if (this.#partsLength < this.#need) return;
      buf = Buffer.concat(this.#parts, this.#partsLength);
      this.#parts = [];
      this.#partsLength = 0;
    }
    let at = 0;
    const end = buf.length;
    while (end - at >= FRAME_HEADER) {
      const length = ((buf[at] ?? 0) << 16) | ((buf[at + 1] ?? 0) << 8) | (buf[at + 2] ?? 0);
      if (length > this.#maxFrameSize) {
        throw new ConnectionError(
          ERROR.FRAME_SIZE_ERROR,
          `Frame of ${length} bytes over ${this.#maxFrameSize}`,
        );
      }
      if (end - at - FRAME_HEADER < length) break;
      const type = buf[at + 3] ?? 0;
      const flags = buf[at + 4] ?? 0;
      // §4.1: the reserved bit is ignored.
      const streamId = buf.readUInt32BE(at + 5) & 0x7fffffff;
      const start = at + FRAME_HEADER;
      at = start + length;
      this.#onFrame(type, flags, streamId, buf.subarray(start, at));
    }
    if (at < end) {
      const rest = buf.subarray(at);
      this.#parts = [rest];
      this.#partsLength = rest.length;
      this.#need =
        rest.length < FRAME_HEADER
          ? FRAME_HEADER
          : FRAME_HEADER + (((rest[0] ?? 0) << 16) | ((rest[1] ?? 0) << 8) | (rest[2] ?? 0));
    }
  }
}

/** Writes a frame header into the first 9 octets of `b`. */
export function writeFrameHeader(
  b: Buffer,
  length: number,
  type: number,
  flags: number,
  streamId: number,
): void {
  b[0] = (length >>> 16) & 0xff;
  b[1] = (length >>> 8) & 0xff;
  b[2] = length & 0xff;
  b[3] = type;
  b[4] = flags;
  b.writeUInt32BE(streamId >>> 0, 5);
}

/** A frame header in a new 9-byte buffer. */
export function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER);
  writeFrameHeader(b, length, type, flags, streamId);
  return b;
}

/** A frame with its payload in one new buffer. */
export function frame(type: number, flags: number, streamId: number, payload?: Buffer): Buffer {
  const length = payload?.length ?? 0;
  const b = Buffer.allocUnsafe(FRAME_HEADER + length);
  writeFrameHeader(b, length, type, flags, streamId);
  payload?.copy(b, FRAME_HEADER);
  return b;
}

export function settingsFrame(values: readonly (readonly [number, number])[]): Buffer {
  const payload = Buffer.allocUnsafe(values.length * 6);
  values.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, i * 6);
    payload.writeUInt32BE(value >>> 0, i * 6 + 2);
  });
  return frame(FRAME.SETTINGS, 0, 0, payload);
}

/** A frame with a 4-octet payload (WINDOW_UPDATE, RST_STREAM) in one allocation. */
function word(type: number, streamId: number, value: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER + 4);
  writeFrameHeader(b, 4, type, 0, streamId);
  b.writeUInt32BE(value >>> 0, FRAME_HEADER);
  return b;
}

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  return word(FRAME.WINDOW_UPDATE, streamId, increment);
}

export function rstStreamFrame(streamId: number, code: number): Buffer {
  return word(FRAME.RST_STREAM, streamId, code);
}

export function goawayFrame(lastStreamId: number, code: number): Buffer {
  const b = frame(FRAME.GOAWAY, 0, 0, Buffer.alloc(8));
  b.writeUInt32BE(lastStreamId >>> 0, FRAME_HEADER);
  b.writeUInt32BE(code >>> 0, FRAME_HEADER + 4);
  return b;
}

/**
 * The payload of a DATA or HEADERS frame without padding (§6.1, §6.2); `skip` more octets (the
 * HEADERS priority fields) follow the pad length. Padding that leaves nothing is a PROTOCOL_ERROR.
 */
export function unpad(payload: Buffer, flags: number, skip: number): Buffer {
  if ((flags & FLAG.PADDED) === 0) {
    if (payload.length < skip) throw new ConnectionError(ERROR.FRAME_SIZE_ERROR, 'Frame too short');
    return payload.subarray(skip);
  }
  if (payload.length < 1 + skip) throw new ConnectionError(ERROR.FRAME_SIZE_ERROR, 'Frame too short');
  const pad = payload[0] ?? 0;
  if (pad > payload.length - 1 - skip) {
    throw new ConnectionError(ERROR.PROTOCOL_ERROR, 'Padding longer than the frame');
  }
  return payload.subarray(1 + skip, payload.length - pad);
}
