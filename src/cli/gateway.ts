import { fileURLToPath } from 'node:url';
import type { Writable } from 'node:stream';
import { type App, type AppRunner, type Clock, listenerApp, runApps } from '#core/app';
import { type ConfigStore, type Environment, ConfigStore as Store } from '#core/config';
import type { Logger } from '#core/log';
import { type BuiltCore, buildCore } from './core-services.ts';
import { checkGatehouseConfig, type GatehouseConfig, gatehouseConfigSchema } from './config-schema.ts';
import { createEnabledDoors } from './doors.ts';
import { registerWebUi } from './web-ui.ts';
import { registerConfigRoutes } from './config-routes.ts';

/** The built web console, next to the sources. */
const WEB_DIST = fileURLToPath(new URL('../../web/dist', import.meta.url));

export interface GatewayOptions {
  /** YAML configuration file (`--config` or GATEHOUSE_CONFIG). */
  readonly configFile?: string;
  readonly env: Environment;
  /** Command-line overrides by dotted path, e.g. `{ 'server.listen': '127.0.0.1:0' }`. */
  readonly overrides?: Readonly<Record<string, unknown>>;
  /** Base folder for a relative data folder. */
  readonly cwd: string;
  readonly clock?: Clock;
  readonly logStream?: Writable;
  /** Watch the configuration file for changes (serve does; tests may not). */
  readonly watchConfig?: boolean;
}

/** A running gateway: the composition root's handle for serve and black-box tests. */
export interface Gateway extends AsyncDisposable {
  /** The main HTTP server's URL, e.g. `http://127.0.0.1:7070`. */
  readonly url: string;
  readonly config: ConfigStore<GatehouseConfig>;
  readonly built: BuiltCore;
  /** The bootstrapped admin password when this start created the admin account, once. */
  readonly adminPassword: string | undefined;
  readonly log: Logger;
  /** Reloads the dynamic configuration (SIGHUP, file change, admin API). */
  reload(): Promise<void>;
  /** Drains and stops every door and the HTTP server, then closes the core. */
  stop(timeoutMs?: number): Promise<void>;
}

/**
 * Starts Gatehouse: loads and validates the configuration (throwing ConfigValidationError with
 * every problem), builds the core, bootstraps the admin account on first start, provisions and
 * starts every enabled door, then the main HTTP listener.
 */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const store = await Store.open(gatehouseConfigSchema, {
    ...(options.configFile === undefined ? {} : { file: options.configFile }),
    env: options.env,
    ...(options.overrides === undefined ? {} : { overrides: options.overrides }),
  });
  const origin = options.configFile ?? 'the environment';
  checkGatehouseConfig(store.current, origin);
  // A reloaded document passes the same checks as the first one, or it is refused as a whole
  // (its policy by the registry door's own vet, which compiles it once).
  store.vet((next) => checkGatehouseConfig(next, origin, { policy: false }));
  const shutdown = new AbortController();
  const built = await buildCore({
    store,
    cwd: options.cwd,
    shutdown: shutdown.signal,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.logStream === undefined ? {} : { logStream: options.logStream }),
  });
  const { core, http, auth } = built;
  const log = core.log;
  for (const warning of store.warnings) log.warn(warning);
  let runner: AppRunner | undefined;
  let adminPassword: string | undefined;
  try {
    const config = store.current;
    const admin = await auth.ensureAdmin(
      config.auth.adminPassword === undefined ? {} : { password: config.auth.adminPassword },
    );
    // Only a generated password is shown; one the operator chose is never printed.
    adminPassword = admin.created && admin.generated === true ? admin.password : undefined;
    registerConfigRoutes(http, store, core.audit);
    const doors: App[] = await createEnabledDoors(core, store);
    // The console is served when it was built (`npm start` builds it first).
    if (!registerWebUi(http, WEB_DIST)) log.info('Web console not built; run "npm --prefix web run build"');
    for (const door of doors) log.info('Door enabled', { door: door.name });
    const apps: App[] = [...doors, listenerApp('http', http)];
    runner = await runApps(apps, core, {
      log,
      shutdownTimeoutMs: config.server.shutdownTimeout,
    });
    store.onReload((outcome) => {
      if (outcome.ok) {
        log.info('Configuration reloaded', {
          changed: outcome.changed,
          restartNeeded: outcome.restartNeeded,
        });
        for (const error of outcome.listenerErrors ?? []) {
          log.error('A module failed to apply the reloaded configuration', { error });
        }
        void core.audit.record({
          actor: 'system',
          action: 'config.reload',
          resource: `config:${store.file ?? 'environment'}`,
          decision: 'info',
          details: { changed: outcome.changed, restartNeeded: outcome.restartNeeded },
        });
      } else {
        log.error('Configuration reload failed; keeping the last good configuration', {
          error: outcome.error.message,
        });
        void core.audit.record({
          actor: 'system',
          action: 'config.reload',
          resource: `config:${store.file ?? 'environment'}`,
          decision: 'error',
          reason: outcome.error.message,
        });
      }
    });
    if (options.watchConfig === true) store.watch();
    const started = runner;
    let stopping: Promise<void> | undefined;
    const gateway: Gateway = {
      url: http.url,
      config: store,
      built,
      adminPassword,
      log,
      async reload() {
        await store.reload();
      },
      stop(timeoutMs) {
        stopping ??= (async () => {
          shutdown.abort();
          store.close();
          await started.stop(timeoutMs ?? store.current.server.shutdownTimeout);
          await built.close();
        })();
        return stopping;
      },
      [Symbol.asyncDispose]() {
        return gateway.stop(5000);
      },
    };
    return gateway;
  } catch (error) {
    await runner?.stop(2000).catch(() => {});
    await built.close().catch(() => {});
    // The account exists now: a start that fails after bootstrapping it (a port in use) must
    // still hand its generated password over, or it is lost for good.
    if (adminPassword !== undefined && typeof error === 'object' && error !== null)
      bootstrapped.set(error, adminPassword);
    throw error;
  }
}

const bootstrapped = new WeakMap<object, string>();

/** The admin password a failed start generated before it failed, to be shown once. */
export function passwordBootstrappedBefore(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? bootstrapped.get(error) : undefined;
}
