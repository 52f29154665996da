/**
 * An RFC 6266 `Content-Disposition: attachment` value that is always a valid header: an ASCII
 * fallback in `filename` (RFC 6266 section 4.3) and the exact name, UTF-8 and percent-encoded,
 * in `filename*` (RFC 8187). Names with non-Latin-1 or control characters must never make the
 * header write throw after the upload was accepted.
 */
export function attachmentDisposition(fileName: string): string {
  const fallback = fileName.replace(/[^\x20-\x7e]|["\\%;]/g, '_') || 'download';
  const encoded = encodeURIComponent(fileName).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
