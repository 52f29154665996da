import { ApiError, type Problem, networkError } from '../api/problem.ts';

export interface UploadProgress {
  readonly loaded: number;
  readonly total: number;
}

export interface UploadOptions {
  readonly url: string;
  readonly token: string;
  readonly file: Blob;
  readonly onProgress?: (progress: UploadProgress) => void;
  readonly signal?: AbortSignal;
  /** For tests: the XMLHttpRequest constructor. */
  readonly xhr?: () => XMLHttpRequest;
}

function problemOf(xhr: XMLHttpRequest): ApiError {
  let problem: Problem = {};
  try {
    problem = JSON.parse(xhr.responseText) as Problem;
  } catch {
    problem = {};
  }
  return new ApiError({
    status: xhr.status,
    code: problem.code ?? `HTTP_${xhr.status}`,
    message: problem.detail ?? problem.title ?? `Upload failed with status ${xhr.status}`,
    ...(problem.title === undefined ? {} : { title: problem.title }),
    errorId: problem.errorId ?? xhr.getResponseHeader('x-request-id') ?? undefined,
    details: problem.details,
    body: problem,
  });
}

/**
 * Sends the file as the raw request body. XMLHttpRequest rather than fetch because only it reports
 * upload progress over HTTP/1.1 (a streamed fetch body needs HTTP/2 in Chromium).
 */
export function uploadFile<T>(options: UploadOptions): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const xhr = options.xhr?.() ?? new XMLHttpRequest();
    xhr.open('POST', options.url);
    xhr.setRequestHeader('authorization', `Bearer ${options.token}`);
    xhr.setRequestHeader('accept', 'application/json');
    xhr.setRequestHeader(
      'content-type',
      options.file.type === '' ? 'application/octet-stream' : options.file.type,
    );
    xhr.upload.onprogress = (e) =>
      options.onProgress?.({ loaded: e.loaded, total: e.total || options.file.size });
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(JSON.parse(xhr.responseText) as T);
        } catch {
          resolve(undefined as T);
        }
      } else reject(problemOf(xhr));
    };
    xhr.onerror = () => reject(networkError(new TypeError('Upload connection failed')));
    xhr.onabort = () => reject(networkError(new DOMException('Upload cancelled', 'AbortError')));
    options.signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(options.file);
  });
}
