/**
 * A real CoreServices for door-level edge tests, assembled from the core modules the way `serve`
 * does (SQLite file, main HTTP server with auth and RBAC, audit log, limiters, metrics), until
 * the shared `createTestCore` exists. Users with chosen roles log in for bearer tokens.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CoreServices, createHealthRegistry, systemClock } from '#core/app';
import { createAuditLog } from '#core/audit';
import { type AuthService, authConfigSchema, createAuthService, registerAuthRoutes } from '#core/auth';
import { cacheConfigSchema, createCache } from '#core/cache';
import { loadConfig, validateRaw } from '#core/config';
import { createHttpServer, httpConfigSchema, type MainHttpServer } from '#core/http';
import { createLogger } from '#core/log';
import { createMetrics } from '#core/metrics';
import { createLimiterFactory } from '#core/ratelimit';
import { authorize, type Role } from '#core/rbac';
import { createSqliteDatabase, type Database } from '#core/storage';

const PASSWORD = 'correct horse battery staple';

export interface TestCore extends AsyncDisposable {
  readonly core: CoreServices;
  readonly url: string;
  readonly db: Database;
  /** Binds the main HTTP server; call after doors registered their routes. */
  listen(): Promise<string>;
  /** Creates a user holding `role` and returns its bearer token. */
  tokenFor(role: Role): Promise<string>;
  /** One call of the main HTTP server's API with `token` (none: anonymous) and a JSON body. */
  api(method: string, path: string, token: string | undefined, body?: unknown): Promise<ApiAnswer>;
}

/** An API answer: its status and its JSON body (`{}` when empty). */
export interface ApiAnswer {
  readonly status: number;
  readonly json: Record<string, unknown>;
}

/** Builds and listens; `file` keeps the database for a restart test. */
export async function startTestCore(options: { readonly dbFile?: string } = {}): Promise<TestCore> {
  const dir = await mkdtemp(join(tmpdir(), 'edge-core-'));
  const log = createLogger({ level: 'silent' });
  const db = await createSqliteDatabase({ file: options.dbFile ?? join(dir, 'gatehouse.db') });
  const metrics = createMetrics({ processMetrics: false });
  const audit = await createAuditLog({
    db,
    file: join(dir, 'audit.jsonl'),
    clock: systemClock,
    log,
    metrics,
  });
  const config = (await loadConfig(authConfigSchema, { text: 'password: { scrypt: { ln: 10 } }\n' })).config;
  const auth: AuthService = await createAuthService({ db, clock: systemClock, log, dataDir: dir, config });
  const limiters = createLimiterFactory();
  const health = createHealthRegistry({ clock: systemClock });
  const http: MainHttpServer = await createHttpServer({
    config: validateRaw(httpConfigSchema, { listen: '127.0.0.1:0' }, 'test'),
    log,
    metrics,
    authenticator: auth,
    authorize,
    limiters,
    clock: systemClock,
    health,
    audit,
  });
  registerAuthRoutes(http, auth, audit);
  const shutdown = new AbortController();
  const core: CoreServices = {
    log,
    clock: systemClock,
    metrics,
    db,
    cache: createCache(validateRaw(cacheConfigSchema, {}, 'test')),
    audit,
    auth,
    authorize,
    http,
    limiters,
    health,
    dataDir: dir,
    shutdown: shutdown.signal,
  };
  let url = '';
  let users = 0;
  return {
    core,
    db,
    get url() {
      return url;
    },
    async tokenFor(role) {
      const username = `${role}-${++users}`;
      await auth.users.create({ username, password: PASSWORD, roles: [{ role, namespace: '*' }] }, 'test');
      return (await auth.login(username, PASSWORD)).accessToken;
    },
    async api(method, path, token, body) {
      const headers: Record<string, string> = {};
      if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
      if (body !== undefined) headers['content-type'] = 'application/json';
      const response = await fetch(`${url}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      return {
        status: response.status,
        json: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown>,
      };
    },
    async listen() {
      url = await http.listen();
      return url;
    },
    async [Symbol.asyncDispose]() {
      shutdown.abort();
      await http.close(AbortSignal.timeout(2000));
      auth.close();
      await audit.close();
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
