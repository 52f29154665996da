/** Pieces of a `multipart/form-data` upload body, for the artifacts door's form tests. */
export const BOUNDARY = 'gh-multipart-edge';
export const FORM_HEADERS = { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` };
export const field = (name: string, value: string) =>
  `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
export const file = (data: string, contentType?: string) =>
  `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\n${
    contentType === undefined ? '' : `Content-Type: ${contentType}\r\n`
  }\r\n${data}\r\n`;
export const END = `--${BOUNDARY}--\r\n`;
/** A whole form: the fields in order, then a file part with `data`, then the closing delimiter. */
export const form = (fields: Readonly<Record<string, string>>, data: string) =>
  `${Object.entries(fields)
    .map(([k, v]) => field(k, v))
    .join('')}${file(data, 'application/octet-stream')}${END}`;
