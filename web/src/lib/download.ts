import type { ApiClient } from '../api/client.ts';
import { ApiError, CLIENT_CODES } from '../api/problem.ts';

function fileNameOf(disposition: string | null, fallback: string): string {
  const match = disposition === null ? null : /filename="([^"]+)"/.exec(disposition);
  return match?.[1] ?? fallback;
}

/**
 * Downloads a small document (an SBOM) through the API client and hands it to the browser as a
 * file. It is held in memory: artifacts go through downloadArtifact instead.
 */
export async function downloadThrough(client: ApiClient, path: string, fallbackName: string): Promise<void> {
  const response = await client.fetchRaw('GET', path, { headers: { accept: '*/*' } });
  const blob = await response.blob();
  saveBlob(blob, fileNameOf(response.headers.get('content-disposition'), fallbackName));
}

/** What `POST /api/artifacts/{id}/download-tickets` answers. */
export interface DownloadTicket {
  readonly ticket: string;
  readonly expiresAt: string;
  readonly method: string;
  readonly action: string;
  readonly field: string;
}

/** The hidden frame downloads are submitted into, so that a refusal never replaces the console. */
export const DOWNLOAD_FRAME = 'gatehouse-download';

let pendingFailure: (() => void) | undefined;

function downloadFrame(): HTMLIFrameElement {
  const found = document.querySelector<HTMLIFrameElement>(`iframe[name="${DOWNLOAD_FRAME}"]`);
  if (found !== null) return found;
  const frame = document.createElement('iframe');
  frame.name = DOWNLOAD_FRAME;
  frame.title = 'Downloads';
  frame.hidden = true;
  frame.tabIndex = -1;
  frame.setAttribute('aria-hidden', 'true');
  document.body.append(frame);
  return frame;
}

/**
 * Downloads an artifact without holding it in memory: the console asks for a single-use ticket
 * (with its bearer token, so a refusal comes back as a readable problem with its errorId), then
 * submits it in a form POST that the browser answers by streaming the file to disk. The ticket
 * travels in the request body, so it lands in no URL, history entry or access log; the access
 * token never leaves the API client. `onFailure` hears about a download the browser did not start
 * (the answer was a page, not a file: the frame loaded).
 */
export async function downloadArtifact(
  client: ApiClient,
  id: string,
  onFailure: (error: ApiError) => void,
): Promise<void> {
  const issued = await client.request<DownloadTicket>(
    'POST',
    `/api/artifacts/${encodeURIComponent(id)}/download-tickets`,
  );
  const frame = downloadFrame();
  const form = document.createElement('form');
  form.method = 'post';
  form.action = issued.action;
  form.target = DOWNLOAD_FRAME;
  form.hidden = true;
  const input = document.createElement('input');
  input.type = 'hidden';
  input.name = issued.field;
  input.value = issued.ticket;
  form.append(input);
  document.body.append(form);
  form.submit();
  form.remove();
  // A file answer does not load the frame; anything else (an expired ticket's problem) does.
  pendingFailure?.();
  const failed = () =>
    onFailure(
      new ApiError({
        status: 0,
        code: CLIENT_CODES.downloadFailed,
        title: 'Download did not start',
        message: 'The server did not send the file. Try the download again.',
      }),
    );
  frame.addEventListener('load', failed, { once: true });
  pendingFailure = () => frame.removeEventListener('load', failed);
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
