import { GatewayError } from '#core/errors';

/** One part of a multipart/form-data body (RFC 7578); `body` must be read before the next part. */
export interface MultipartPart {
  readonly name: string;
  readonly fileName?: string;
  readonly contentType?: string;
  readonly body: AsyncIterable<Buffer>;
}

const MAX_HEADER_BYTES = 16 * 1024;

function malformed(message: string): GatewayError {
  return new GatewayError('GW_ERR_ARTIFACTS_UPLOAD_INVALID', { message, details: { field: 'body' } });
}

/**
 * The boundary parameter of a multipart/form-data Content-Type, or undefined for another type.
 * A form without a usable boundary is refused rather than stored as a raw body (RFC 7578 §4.1
 * makes the parameter mandatory).
 */
export function boundaryOf(contentType: string | undefined): string | undefined {
  if (contentType === undefined || !/^multipart\/form-data\s*(?:;|$)/i.test(contentType)) return undefined;
  const match = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(contentType);
  const boundary = match?.[1] ?? match?.[2];
  if (boundary === undefined)
    throw malformed('Multipart Content-Type has no boundary parameter of 1 to 70 characters');
  return boundary;
}

function parseDisposition(headers: string): { name: string; fileName?: string; contentType?: string } {
  let name: string | undefined;
  let fileName: string | undefined;
  let contentType: string | undefined;
  for (const line of headers.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (key === 'content-type') contentType = value;
    if (key !== 'content-disposition') continue;
    name = /(?:^|;)\s*name="([^"]*)"/i.exec(value)?.[1];
    fileName = /(?:^|;)\s*filename="([^"]*)"/i.exec(value)?.[1];
  }
  if (name === undefined) throw malformed('Multipart part has no Content-Disposition name');
  return {
    name,
    ...(fileName === undefined ? {} : { fileName }),
    ...(contentType === undefined ? {} : { contentType }),
  };
}

/**
 * Streams the parts of a multipart/form-data body with bounded memory: part bodies are yielded
 * as they arrive, holding back only enough bytes to recognise a delimiter split across chunks.
 */
export async function* parseMultipart(
  source: AsyncIterable<Uint8Array>,
  boundary: string,
): AsyncGenerator<MultipartPart> {
  const iterator = source[Symbol.asyncIterator]();
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  // The first delimiter has no leading CRLF; prepending one makes every delimiter look alike.
  let buf = Buffer.from('\r\n');
  let ended = false;
  const fill = async (): Promise<boolean> => {
    if (ended) return false;
    const next = await iterator.next();
    if (next.done === true) {
      ended = true;
      return false;
    }
    buf = buf.length === 0 ? Buffer.from(next.value) : Buffer.concat([buf, next.value]);
    return true;
  };
  const need = async (n: number) => {
    while (buf.length < n) if (!(await fill())) throw malformed('Multipart body ended early');
  };
  // Skip the preamble up to the first delimiter.
  for (let at = buf.indexOf(delimiter); ; at = buf.indexOf(delimiter)) {
    if (at >= 0) {
      buf = buf.subarray(at + delimiter.length);
      break;
    }
    if (buf.length > MAX_HEADER_BYTES) throw malformed('Multipart body has no boundary');
    if (!(await fill())) throw malformed('Multipart body has no boundary');
  }
  for (;;) {
    await need(2);
    if (buf[0] === 0x2d && buf[1] === 0x2d) return;
    // `buf` starts with the delimiter line's CRLF; the header block runs from there to the blank
    // line. Its length is checked however it arrived: still open (at least all but the three
    // bytes that may begin the blank line) and once its end is seen, in the same chunk or not.
    const tooLong = (block: number) => {
      if (block > MAX_HEADER_BYTES) {
        throw malformed(`Multipart part headers are longer than ${MAX_HEADER_BYTES} bytes`);
      }
    };
    let headerEnd = buf.indexOf('\r\n\r\n');
    while (headerEnd < 0) {
      tooLong(buf.length - 5);
      if (!(await fill())) throw malformed('Multipart body ended early');
      headerEnd = buf.indexOf('\r\n\r\n');
    }
    tooLong(headerEnd - 2);
    const head = buf.subarray(0, headerEnd).toString('utf8');
    if (!head.startsWith('\r\n')) throw malformed('Multipart delimiter is not followed by a line break');
    buf = buf.subarray(headerEnd + 4);
    const meta = parseDisposition(head.slice(2));
    let done = false;
    async function* body(): AsyncGenerator<Buffer> {
      for (;;) {
        const at = buf.indexOf(delimiter);
        if (at >= 0) {
          if (at > 0) yield Buffer.from(buf.subarray(0, at));
          buf = buf.subarray(at + delimiter.length);
          done = true;
          return;
        }
        const safe = buf.length - delimiter.length + 1;
        if (safe > 0) {
          const out = Buffer.from(buf.subarray(0, safe));
          buf = buf.subarray(safe);
          yield out;
        }
        if (!(await fill())) throw malformed('Multipart body ended inside a part');
      }
    }
    const part = body();
    yield { ...meta, body: part };
    // Drain whatever the consumer left unread so the next part starts at its delimiter; a fresh
    // generator is needed because a consumer that stopped early closed the first one.
    if (!done) for await (const _ of body()) void _;
  }
}
