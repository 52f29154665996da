import { describe, expect, it } from 'vitest';
import { ApiError, CLIENT_CODES } from '../api/problem.ts';
import { uploadFile } from './upload.ts';

/** Just enough of XMLHttpRequest to drive the callbacks the way a browser does. */
class FakeXhr {
  status = 0;
  responseText = '';
  headers: Record<string, string> = {};
  sent: unknown;
  url = '';
  upload: { onprogress: ((e: { loaded: number; total: number }) => void) | null } = { onprogress: null };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onabort: (() => void) | null = null;
  open(_method: string, url: string) {
    this.url = url;
  }
  setRequestHeader(name: string, value: string) {
    this.headers[name] = value;
  }
  getResponseHeader() {
    return null;
  }
  send(body: unknown) {
    this.sent = body;
  }
  abort() {
    this.onabort?.();
  }
}

function start(signal?: AbortSignal) {
  const xhr = new FakeXhr();
  const progress: number[] = [];
  const file = new Blob(['hello'], { type: '' });
  const done = uploadFile<{ id: string }>({
    url: '/api/artifacts?name=a',
    token: 't0k',
    file,
    onProgress: (p) => progress.push(p.loaded),
    xhr: () => xhr as unknown as XMLHttpRequest,
    ...(signal === undefined ? {} : { signal }),
  });
  return { xhr, progress, done, file };
}

describe('uploadFile', () => {
  it('sends the raw file with the bearer and reports progress', async () => {
    const { xhr, progress, done, file } = start();
    expect(xhr.sent).toBe(file);
    expect(xhr.headers['authorization']).toBe('Bearer t0k');
    expect(xhr.headers['content-type']).toBe('application/octet-stream');
    xhr.upload.onprogress?.({ loaded: 2, total: 5 });
    xhr.upload.onprogress?.({ loaded: 5, total: 5 });
    xhr.status = 201;
    xhr.responseText = '{"id":"abc"}';
    xhr.onload?.();
    await expect(done).resolves.toEqual({ id: 'abc' });
    expect(progress).toEqual([2, 5]);
  });

  it('turns a refused upload into an ApiError carrying the errorId', async () => {
    const { xhr, done } = start();
    xhr.status = 422;
    xhr.responseText = JSON.stringify({
      code: 'GW_ERR_ARTIFACTS_DIGEST_MISMATCH',
      detail: 'Digest mismatch',
      errorId: 'e-9',
    });
    xhr.onload?.();
    const error = (await done.catch((e: unknown) => e)) as ApiError;
    expect([error.status, error.code, error.message, error.errorId]).toEqual([
      422,
      'GW_ERR_ARTIFACTS_DIGEST_MISMATCH',
      'Digest mismatch',
      'e-9',
    ]);
  });

  it('reports a connection dropped midway as a network error', async () => {
    const { xhr, done } = start();
    xhr.upload.onprogress?.({ loaded: 3, total: 5 });
    xhr.onerror?.();
    await expect(done).rejects.toMatchObject({ code: CLIENT_CODES.network });
  });

  it('cancels on abort', async () => {
    const controller = new AbortController();
    const { done } = start(controller.signal);
    controller.abort();
    await expect(done).rejects.toMatchObject({ code: CLIENT_CODES.aborted });
  });
});
