import type { ApiClient } from '../api/client.ts';

function fileNameOf(disposition: string | null, fallback: string): string {
  const match = disposition === null ? null : /filename="([^"]+)"/.exec(disposition);
  return match?.[1] ?? fallback;
}

/**
 * Downloads through the API client (the bearer token cannot ride on a plain link) and hands the
 * bytes to the browser as a file.
 */
export async function downloadThrough(client: ApiClient, path: string, fallbackName: string): Promise<void> {
  const response = await client.fetchRaw('GET', path, { headers: { accept: '*/*' } });
  const blob = await response.blob();
  saveBlob(blob, fileNameOf(response.headers.get('content-disposition'), fallbackName));
}

/** Offers a Blob as a download. */
export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.rel = 'noopener';
  document.body.append(a);
  a.click();
  a.remove();
  // Revoke later: Chromium starts reading the blob asynchronously after the click.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
