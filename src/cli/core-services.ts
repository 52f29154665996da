import { chmod, mkdir } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import {
  type Clock,
  type CoreServices,
  createHealthRegistry,
  pingCheck,
  selectSection,
  systemClock,
} from '#core/app';
import { type ClosableAuditLog, createAuditLog } from '#core/audit';
import { type AuthService, createAuthService, registerAuthRoutes } from '#core/auth';
import { type Cache, createCache } from '#core/cache';
import type { ConfigStore } from '#core/config';
import { createHttpServer, type MainHttpServer, registerAuditRoutes } from '#core/http';
import { createLogger, type Logger } from '#core/log';
import { createMetrics } from '#core/metrics';
import { type ClosableLimiterFactory, createLimiterFactory } from '#core/ratelimit';
import { authorize } from '#core/rbac';
import { createDatabase, type Database } from '#core/storage';
import type { GatehouseConfig } from './config-schema.ts';

/** The core as `serve` builds it, plus what only the composition root needs to hold. */
export interface BuiltCore {
  readonly core: CoreServices;
  readonly http: MainHttpServer;
  readonly auth: AuthService;
  readonly audit: ClosableAuditLog;
  /** Closes what the core opened (database, cache, limiters), after the apps stopped. */
  close(): Promise<void>;
}

export interface BuildCoreOptions {
  readonly store: ConfigStore<GatehouseConfig>;
  /** Base folder for a relative `home` (the working directory for `serve`). */
  readonly cwd: string;
  readonly clock?: Clock;
  /** Where logs go (stderr by default). */
  readonly logStream?: Writable;
  readonly shutdown: AbortSignal;
}

/** The data folder: absolute, created with mode 0700 (it holds keys and the database). */
export async function ensureDataDir(home: string, cwd: string): Promise<string> {
  const dir = isAbsolute(home) ? home : resolve(cwd, home);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  return dir;
}

async function openStores(config: GatehouseConfig, dataDir: string, log: Logger) {
  const db: Database = await createDatabase(config.storage, {
    dataDir,
    log: log.child({ module: 'storage' }),
  });
  const cache: Cache = createCache(config.cache, { log: log.child({ module: 'cache' }) });
  const limiters: ClosableLimiterFactory = createLimiterFactory(
    config.cache.url === '' ? {} : { redisUrl: config.cache.url, keyPrefix: `${config.cache.keyPrefix}rl:` },
  );
  try {
    // Fail at start, naming the dependency, rather than on the first request.
    await db.ping(config.storage.connectTimeout);
    await cache.ping(config.storage.connectTimeout);
  } catch (error) {
    await Promise.allSettled([cache.close(), limiters.close(), db.close()]);
    throw error;
  }
  return { db, cache, limiters };
}

/**
 * Builds every core service from the configuration: data folder, logger, database (with core
 * migrations), cache, limiters, metrics, audit, identity and the main HTTP server with the
 * core API routes. Doors are added by the caller.
 */
export async function buildCore(options: BuildCoreOptions): Promise<BuiltCore> {
  const { store } = options;
  const config = store.current;
  const clock = options.clock ?? systemClock;
  const log = createLogger({
    level: config.log.level,
    format: config.log.format,
    ...(options.logStream === undefined ? {} : { stream: options.logStream }),
  });
  const dataDir = await ensureDataDir(config.home, options.cwd);
  const { db, cache, limiters } = await openStores(config, dataDir, log);
  try {
    const metrics = createMetrics();
    const health = createHealthRegistry({ clock });
    health.register(
      'database',
      pingCheck((t) => db.ping(t)),
    );
    health.register(
      'cache',
      pingCheck((t) => cache.ping(t)),
    );
    const audit = await createAuditLog({
      db,
      file: join(dataDir, config.audit.file),
      clock,
      log: log.child({ module: 'audit' }),
      metrics,
    });
    const auth = await createAuthService({
      db,
      clock,
      log: log.child({ module: 'auth' }),
      dataDir,
      config: config.auth,
      metrics,
      rbac: selectSection(store, (c) => c.rbac),
      // Every door's authentication drops the roles used from outside their allow-lists.
      roleAllowedCidrs: () => store.current.server.roleAllowedCidrs,
      // Shared through Redis when several replicas run, so an attacker cannot spread guesses.
      limiters: {
        login: limiters.tokenBucket('auth-login', {
          rate: config.auth.loginRate.rate / 60,
          burst: config.auth.loginRate.burst,
        }),
      },
    });
    const http = await createHttpServer({
      config: selectSection(store, (c) => c.server),
      log: log.child({ module: 'http' }),
      metrics,
      authenticator: auth,
      authorize,
      limiters,
      clock,
      health,
      audit,
    });
    registerAuthRoutes(http, auth, audit);
    registerAuditRoutes(http, audit);
    const core: CoreServices = {
      log,
      clock,
      metrics,
      db,
      cache,
      audit,
      auth,
      authorize,
      http,
      limiters,
      health,
      dataDir,
      shutdown: options.shutdown,
    };
    return {
      core,
      http,
      auth,
      audit,
      async close() {
        // Queued audit events reach the database and the file before the database closes.
        await audit.close().catch((error: unknown) => log.error('Audit log flush failed', { error }));
        await Promise.allSettled([cache.close(), limiters.close()]);
        await db.close();
      },
    };
  } catch (error) {
    await Promise.allSettled([cache.close(), limiters.close(), db.close()]);
    throw error;
  }
}
