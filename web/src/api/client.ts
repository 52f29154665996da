import { ApiError, CLIENT_CODES, errorFromResponse, networkError } from './problem.ts';
import { SessionStore, type Tokens } from './session.ts';

/** Refresh this long before the access token expires, so a request never carries a dying token. */
export const REFRESH_MARGIN_MS = 30_000;

export type Query = Readonly<Record<string, string | number | boolean | undefined>>;

export interface RequestOptions {
  readonly query?: Query;
  readonly body?: unknown;
  readonly signal?: AbortSignal;
  readonly headers?: Readonly<Record<string, string>>;
  /** Send without credentials (login, refresh). */
  readonly anonymous?: boolean;
}

export interface ApiClientOptions {
  readonly baseUrl?: string;
  readonly fetch?: typeof fetch;
  readonly storage: Storage;
  readonly now?: () => number;
}

interface LoginAnswer {
  readonly accessToken: string;
  readonly refreshToken: string;
  /** Seconds. */
  readonly expiresIn: number;
}

export type SessionEvent = 'signed-in' | 'signed-out' | 'expired';

/** Builds `path?query`, skipping empty values. */
export function withQuery(path: string, query: Query | undefined): string {
  if (query === undefined) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') params.set(k, String(v));
  const s = params.toString();
  return s === '' ? path : `${path}?${s}`;
}

/**
 * The console's only way to the server: adds the bearer token, refreshes it silently before it
 * expires and once more after a 401, and turns every failure into an ApiError.
 */
export class ApiClient {
  readonly #baseUrl: string;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  readonly session: SessionStore;
  readonly #listeners = new Set<(event: SessionEvent) => void>();
  #refreshing: Promise<string> | undefined;

  constructor(options: ApiClientOptions) {
    this.#baseUrl = options.baseUrl ?? '';
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#now = options.now ?? Date.now;
    this.session = new SessionStore(options.storage);
  }

  get signedIn(): boolean {
    return this.session.tokens !== undefined;
  }

  onSession(listener: (event: SessionEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(event: SessionEvent): void {
    for (const l of this.#listeners) l(event);
  }

  #store(answer: LoginAnswer): void {
    if (typeof answer.accessToken !== 'string' || typeof answer.refreshToken !== 'string') {
      throw new ApiError({
        status: 200,
        code: CLIENT_CODES.badResponse,
        message: 'The server sent no tokens',
      });
    }
    const tokens: Tokens = {
      accessToken: answer.accessToken,
      refreshToken: answer.refreshToken,
      expiresAt: this.#now() + Math.max(0, Number(answer.expiresIn) || 0) * 1000,
    };
    this.session.save(tokens);
  }

  async login(username: string, password: string): Promise<void> {
    const answer = await this.request<LoginAnswer>('POST', '/api/auth/login', {
      body: { username, password },
      anonymous: true,
    });
    this.#store(answer);
    this.#emit('signed-in');
  }

  /** Revokes the refresh token on the server (best effort) and forgets the session. */
  async logout(): Promise<void> {
    const tokens = this.session.tokens;
    this.session.clear();
    this.#emit('signed-out');
    if (tokens === undefined) return;
    await this.request('POST', '/api/auth/logout', {
      body: { refreshToken: tokens.refreshToken },
      headers: { authorization: `Bearer ${tokens.accessToken}` },
      anonymous: true,
    }).catch(() => undefined);
  }

  /** Ends the session because the server no longer accepts it. */
  expire(): void {
    if (this.session.tokens === undefined) return;
    this.session.clear();
    this.#emit('expired');
  }

  /** One refresh at a time: concurrent requests share it. */
  refresh(): Promise<string> {
    this.#refreshing ??= (async () => {
      const tokens = this.session.tokens;
      if (tokens === undefined) throw this.#expiredError();
      try {
        const answer = await this.request<LoginAnswer>('POST', '/api/auth/refresh', {
          body: { refreshToken: tokens.refreshToken },
          anonymous: true,
        });
        this.#store(answer);
        return answer.accessToken;
      } catch (error) {
        // A server that is down is not an expired session: keep the tokens for the retry.
        if (error instanceof ApiError && error.status >= 400 && error.status < 500) {
          this.expire();
          throw this.#expiredError();
        }
        throw error;
      }
    })().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  #expiredError(): ApiError {
    return new ApiError({
      status: 401,
      code: CLIENT_CODES.sessionExpired,
      message: 'Your session has expired',
      title: 'Session expired',
    });
  }

  /** A valid access token, refreshed first when it is about to expire. */
  async accessToken(): Promise<string> {
    const tokens = this.session.tokens;
    if (tokens === undefined) throw this.#expiredError();
    if (tokens.expiresAt - this.#now() > REFRESH_MARGIN_MS) return tokens.accessToken;
    return this.refresh();
  }

  async #send(method: string, path: string, options: RequestOptions, token?: string): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
    let body: BodyInit | undefined;
    if (options.body instanceof Blob || options.body instanceof FormData) body = options.body;
    else if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.body);
    }
    if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
    try {
      return await this.#fetch(this.#baseUrl + withQuery(path, options.query), {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        credentials: 'same-origin',
      });
    } catch (error) {
      throw networkError(error);
    }
  }

  /** Sends a request and returns the successful Response (for downloads and text bodies). */
  async fetchRaw(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    if (options.anonymous === true) {
      const response = await this.#send(method, path, options);
      if (!response.ok) throw await errorFromResponse(response);
      return response;
    }
    let response = await this.#send(method, path, options, await this.accessToken());
    if (response.status === 401) {
      // The token may have been revoked or the server's clock moved: one refresh, one retry.
      response = await this.#send(method, path, options, await this.refresh());
      if (response.status === 401) {
        this.expire();
        throw this.#expiredError();
      }
    }
    if (!response.ok) throw await errorFromResponse(response);
    return response;
  }

  async request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.fetchRaw(method, path, options);
    if (response.status === 204) return undefined as T;
    const type = response.headers.get('content-type') ?? '';
    if (!type.includes('json')) return (await response.text()) as T;
    try {
      return (await response.json()) as T;
    } catch {
      throw new ApiError({
        status: response.status,
        code: CLIENT_CODES.badResponse,
        message: 'The server sent a response the console cannot read',
      });
    }
  }

  get<T = unknown>(path: string, query?: Query, signal?: AbortSignal): Promise<T> {
    return this.request<T>('GET', path, {
      ...(query === undefined ? {} : { query }),
      ...(signal === undefined ? {} : { signal }),
    });
  }
}
