import { chmod, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Environment } from '#core/config';
import { networkReason } from './network-errors.ts';

/** What `gatehouse login` saves so that later commands find the server and a token. */
export interface SavedLogin {
  readonly server: string;
  readonly accessToken: string;
  readonly refreshToken?: string;
  /** Epoch milliseconds when the access token expires. */
  readonly expiresAt?: number;
  readonly username?: string;
}

/**
 * A failure the CLI reports to the user with an exit code. `message` is the text alone; the
 * server's code and errorId are fields, which the CLI shows once: after the message for people,
 * as keys of `--json`'s error object.
 */
export class CliError extends Error {
  readonly exitCode: number;
  readonly code: string | undefined;
  readonly errorId: string | undefined;
  readonly status: number | undefined;
  constructor(
    message: string,
    options: { exitCode?: number; code?: string; errorId?: string; status?: number } = {},
  ) {
    super(message);
    this.name = 'CliError';
    this.exitCode = options.exitCode ?? 1;
    this.code = options.code;
    this.errorId = options.errorId;
    this.status = options.status;
  }
}

/** `$XDG_CONFIG_HOME/gatehouse/credentials.json`, falling back to `~/.config`. */
export function credentialsPath(env: Environment): string {
  const base = env['XDG_CONFIG_HOME'] ?? join(env['HOME'] ?? '.', '.config');
  return join(base, 'gatehouse', 'credentials.json');
}

export async function readSavedLogin(env: Environment): Promise<SavedLogin | undefined> {
  try {
    const parsed: unknown = JSON.parse(await readFile(credentialsPath(env), 'utf8'));
    if (typeof parsed === 'object' && parsed !== null && 'server' in parsed && 'accessToken' in parsed) {
      return parsed as SavedLogin;
    }
    return undefined;
  } catch {
    return undefined;
  }
}

/** Saves credentials atomically with mode 0600 (they are bearer secrets). */
export async function saveLogin(env: Environment, login: SavedLogin): Promise<string> {
  const path = credentialsPath(env);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(login, null, 2)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
  return path;
}

/** True when two server URLs name the same server (trailing slashes aside). */
export function sameServer(a: string, b: string): boolean {
  return a.replace(/\/+$/, '') === b.replace(/\/+$/, '');
}

/** Removes the saved login (after logout: its tokens are revoked and useless on disk). */
export async function forgetSavedLogin(env: Environment): Promise<void> {
  await rm(credentialsPath(env), { force: true });
}

export interface RequestOptions {
  readonly body?: unknown;
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>;
  readonly headers?: Readonly<Record<string, string>>;
  /** Send this stream as the raw body (uploads). */
  readonly stream?: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;
  /** Return the raw Response instead of parsed JSON (downloads). */
  readonly raw?: boolean;
  readonly signal?: AbortSignal;
  /** Skip authentication (login itself). */
  readonly anonymous?: boolean;
}

/** An authenticated HTTP client of the Gatehouse API used by every client command. */
export interface ApiClient {
  readonly server: string;
  request<T = unknown>(method: string, path: string, options?: RequestOptions): Promise<T>;
  requestRaw(method: string, path: string, options?: RequestOptions): Promise<Response>;
}

interface ClientOptions {
  readonly server: string;
  readonly token?: string;
  readonly saved?: SavedLogin;
  readonly env: Environment;
}

async function problemError(response: Response): Promise<CliError> {
  const text = await response.text();
  let message = `Server answered ${response.status} ${response.statusText}`;
  let code: string | undefined;
  let errorId: string | undefined;
  try {
    const problem = JSON.parse(text) as {
      detail?: string;
      title?: string;
      code?: string;
      errorId?: string;
      error?: string;
    };
    message = problem.detail ?? problem.title ?? problem.error ?? message;
    code = problem.code;
    errorId = problem.errorId;
  } catch {
    if (text.trim() !== '') message = `${message}: ${text.trim().slice(0, 200)}`;
  }
  // The code and errorId travel as fields: people see them after the message, --json as keys.
  return new CliError(message, {
    // EXIT.auth (3) when the credentials are refused, EXIT.denied (10) when they may not do it (a
    // policy refusal of an artifact included), as the kv commands answer (framework.ts imports this file).
    exitCode: response.status === 401 ? 3 : response.status === 403 ? 10 : 1,
    ...(code === undefined ? {} : { code }),
    ...(errorId === undefined ? {} : { errorId }),
    status: response.status,
  });
}

/**
 * The error for a request that got no answer. fetch fails with a bare "fetch failed"; why (a
 * refused connection, an unknown host, an untrusted certificate, a port fetch refuses) is in
 * its cause, which people get as a reason and, when there is one, the system code.
 */
function unreachable(server: string, error: unknown): CliError {
  const cause = (error as { cause?: unknown } | undefined)?.cause ?? error;
  const { code, message } = (cause ?? {}) as { code?: unknown; message?: unknown };
  const text = (typeof message === 'string' && message !== '' ? message : String(cause)).split('\n')[0] ?? '';
  let reason: string;
  if (typeof code === 'string' && code !== '') {
    const known = networkReason(code, 'add the CA that signed it to NODE_EXTRA_CA_CERTS');
    reason = `${known ?? text.slice(0, 200)} (${code})`;
  } else if (text === 'bad port') {
    reason = 'fetch refuses to connect to this port (bad port)';
  } else {
    reason = text.slice(0, 200);
  }
  return new CliError(`Cannot reach the Gatehouse server at "${server}": ${reason}`, {
    code: 'GW_ERR_CLI_NO_SERVER',
  });
}

/**
 * Trades a saved login's refresh token at `server` for a new token pair and saves it, as every
 * command that authenticates with the saved login does once its access token has expired.
 * Undefined when there is no refresh token or the server refuses it (the caller then reports
 * its own authentication error); a server that does not answer is `unreachable`.
 */
export async function refreshSavedLogin(
  env: Environment,
  server: string,
  saved: SavedLogin,
): Promise<SavedLogin | undefined> {
  const token = saved.refreshToken;
  if (token === undefined) return undefined;
  // Commands run side by side (a script, a shell loop) share the saved login. The server rotates
  // refresh tokens and takes a second use of one for theft, ending the session: so they refresh
  // one at a time, and one that finds the saved login already refreshed by another uses it.
  return withRefreshLock(env, async () => {
    const current = await readSavedLogin(env);
    if (
      current !== undefined &&
      sameServer(current.server, server) &&
      current.refreshToken !== undefined &&
      current.refreshToken !== token
    )
      return current;
    return refreshNow(env, server, saved, token);
  });
}

/** How long a command waits for another one's refresh; a lock older than this was left behind. */
const REFRESH_LOCK_MS = 15_000;

/** Runs `fn` holding `credentials.json.lock` (created exclusively), waiting for another holder. */
async function withRefreshLock<T>(env: Environment, fn: () => Promise<T>): Promise<T> {
  const lock = `${credentialsPath(env)}.lock`;
  const deadline = Date.now() + REFRESH_LOCK_MS;
  let held = false;
  while (!held) {
    try {
      await (await open(lock, 'wx', 0o600)).close();
      held = true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') break;
      const since = await stat(lock).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      // A command killed while refreshing leaves its lock: take it over rather than wait forever.
      if (since > REFRESH_LOCK_MS || Date.now() > deadline) {
        await rm(lock, { force: true });
        continue;
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
  try {
    return await fn();
  } finally {
    if (held) await rm(lock, { force: true });
  }
}

async function refreshNow(
  env: Environment,
  server: string,
  saved: SavedLogin,
  refreshToken: string,
): Promise<SavedLogin | undefined> {
  const response = await fetch(`${server}/api/auth/refresh`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ refreshToken }),
  }).catch((error: unknown) => {
    throw unreachable(server, error);
  });
  if (!response.ok) return undefined;
  const pair = (await response.json()) as { accessToken: string; refreshToken: string; expiresIn: number };
  const next: SavedLogin = {
    ...saved,
    accessToken: pair.accessToken,
    refreshToken: pair.refreshToken,
    expiresAt: Date.now() + pair.expiresIn * 1000,
  };
  await saveLogin(env, next);
  return next;
}

/**
 * Creates the client. With a saved login, an expired access token is refreshed once with the
 * refresh token and the new pair is saved; an explicit `--token` is used as given.
 */
export function createApiClient(options: ClientOptions): ApiClient {
  const server = options.server.replace(/\/+$/, '');
  let token = options.token ?? options.saved?.accessToken;
  let saved = options.saved;

  const refresh = async (): Promise<boolean> => {
    if (options.token !== undefined || saved === undefined) return false;
    const next = await refreshSavedLogin(options.env, server, saved);
    if (next === undefined) return false;
    saved = next;
    token = next.accessToken;
    return true;
  };

  const send = async (method: string, path: string, opts: RequestOptions): Promise<Response> => {
    const url = new URL(`${server}${path}`);
    for (const [k, v] of Object.entries(opts.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
    if (!opts.anonymous && token !== undefined) headers['authorization'] = `Bearer ${token}`;
    let body: RequestInit['body'];
    if (opts.stream !== undefined) body = opts.stream as RequestInit['body'];
    else if (opts.body !== undefined) {
      headers['content-type'] ??= 'application/json';
      body = JSON.stringify(opts.body);
    }
    try {
      return await fetch(url, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        ...(opts.stream === undefined ? {} : { duplex: 'half' }),
        ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      } as RequestInit);
    } catch (error) {
      throw unreachable(server, error);
    }
  };

  const requestRaw = async (method: string, path: string, opts: RequestOptions = {}): Promise<Response> => {
    let response = await send(method, path, opts);
    // Only a request that sent the token is retried with a fresh one: an anonymous one (a login)
    // refused with 401 would be sent again, a second password guess the lockout counts.
    if (
      response.status === 401 &&
      opts.stream === undefined &&
      opts.anonymous !== true &&
      (await refresh())
    ) {
      response = await send(method, path, opts);
    }
    if (!response.ok && !(opts.raw === true && response.status === 206)) throw await problemError(response);
    return response;
  };

  return {
    server,
    requestRaw,
    async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
      const response = await requestRaw(method, path, opts);
      if (response.status === 204) return undefined as T;
      const type = response.headers.get('content-type') ?? '';
      return (type.includes('json') ? await response.json() : await response.text()) as T;
    },
  };
}
