import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { stringify } from 'yaml';
import { ConfigValidationError, describeIssue, loadConfig, redact, type Schema } from '#core/config';
import { GatewayError, isGatewayError } from '#core/errors';
import { createLogger, type Logger } from '#core/log';
import { createDatabase, type Database, MIGRATIONS_TABLE, sqliteFileOf } from '#core/storage';
import { checkGatehouseConfig, gatehouseConfigSchema } from './config-schema.ts';
import { type CliError, readSavedLogin } from './client.ts';
import { ensureDataDir } from './core-services.ts';
import { type CommandContext, type CommandSpec, EXIT, usageError } from './framework.ts';

/** Loads the effective configuration the way `serve` does: file, environment, flags. */
export async function loadEffectiveConfig(ctx: CommandContext, file: string | undefined) {
  const loaded = await loadConfig(gatehouseConfigSchema, {
    ...(file === undefined ? {} : { file }),
    env: ctx.env,
  });
  checkGatehouseConfig(loaded.config, file ?? 'the environment');
  return loaded;
}

/** What an offline command (vulndb import, audit verify) opens on the configured storage. */
export interface LocalStorage {
  readonly config: Awaited<ReturnType<typeof loadEffectiveConfig>>['config'];
  readonly dataDir: string;
  readonly db: Database;
  readonly log: Logger;
  close(): Promise<void>;
}

/** `--config FILE`, for the commands that read the configuration (or GATEHOUSE_CONFIG) themselves. */
export const CONFIG_FLAG = {
  name: 'config',
  type: 'string',
  value: 'FILE',
  description: 'Configuration file (or GATEHOUSE_CONFIG)',
} as const;

/** The flags and variables that select the data folder, for messages. */
const LOCAL_SELECTORS = '--config FILE, GATEHOUSE_CONFIG or GATEHOUSE_HOME';

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** Where a command that can act on the data folder or through a server acts, and what chose it. */
export type Target =
  | { readonly kind: 'local' }
  | { readonly kind: 'server'; readonly server: string; readonly via: string };

/**
 * Chooses between the local data folder and a server for a command that can act on either
 * (`audit verify`, `vulndb status`) or that refuses a server (`vulndb import`). A flag beats
 * the environment, which beats the saved login; the data folder is chosen by `--config`,
 * GATEHOUSE_CONFIG or GATEHOUSE_HOME, a server by `--server`, GATEHOUSE_URL or `gatehouse
 * login`. Both at the same level is a usage error rather than a guess; nothing at all is the
 * data folder of the working directory's default (`./.gatehouse`).
 */
export async function chooseTarget(ctx: CommandContext, command: string): Promise<Target> {
  const flagServer = nonEmpty(ctx.flag('server'));
  const flagConfig = nonEmpty(ctx.flag('config'));
  if (flagServer !== undefined && flagConfig !== undefined)
    throw usageError(
      `"gatehouse ${command}" acts either on the data folder of --config or through the server of --server; give one of them`,
    );
  if (flagServer !== undefined) return { kind: 'server', server: flagServer, via: '--server' };
  if (flagConfig !== undefined) return { kind: 'local' };
  const envServer = nonEmpty(ctx.env['GATEHOUSE_URL']);
  const envLocal = ['GATEHOUSE_CONFIG', 'GATEHOUSE_HOME'].find(
    (name) => nonEmpty(ctx.env[name]) !== undefined,
  );
  if (envServer !== undefined && envLocal !== undefined)
    throw usageError(
      `GATEHOUSE_URL names a server and ${envLocal} a data folder; "gatehouse ${command}" acts on one: give --server URL or --config FILE, or unset one of them`,
    );
  if (envServer !== undefined) return { kind: 'server', server: envServer, via: 'GATEHOUSE_URL' };
  if (envLocal !== undefined) return { kind: 'local' };
  const saved = await readSavedLogin(ctx.env);
  if (saved !== undefined)
    return { kind: 'server', server: saved.server, via: 'the saved login of "gatehouse login"' };
  return { kind: 'local' };
}

/** The refusal of a command that only acts on the data folder, when a server was chosen. */
export function localOnly(command: string, target: Extract<Target, { kind: 'server' }>): CliError {
  return usageError(
    `"gatehouse ${command}" works on the database of the local data folder and cannot act through a server (${target.via} names ${target.server}). Run it where the server's configuration is and select its data folder with ${LOCAL_SELECTORS}`,
  );
}

/**
 * Opens the configured database directly, without a server: `--config`/GATEHOUSE_CONFIG and
 * the environment select it exactly as `serve` would. An invalid configuration is a usage error.
 * With `existing` (the command's name), the database must be one a Gatehouse server made: the
 * command refuses, naming the folder, rather than create an empty one and report on that.
 */
export async function openLocalStorage(
  ctx: CommandContext,
  options: { readonly existing?: string; readonly hint?: string } = {},
): Promise<LocalStorage> {
  let loaded: Awaited<ReturnType<typeof loadEffectiveConfig>>;
  try {
    loaded = await loadEffectiveConfig(ctx, ctx.flag('config') ?? ctx.env['GATEHOUSE_CONFIG']);
  } catch (error) {
    if (error instanceof ConfigValidationError) throw usageError(error.message);
    throw error;
  }
  const { config } = loaded;
  const log = createLogger({ level: 'error' });
  const command = options.existing;
  if (command === undefined) {
    const dataDir = await ensureDataDir(config.home, process.cwd());
    const db = await createDatabase(config.storage, { dataDir, log });
    return { config, dataDir, db, log, close: () => db.close() };
  }
  const dataDir = isAbsolute(config.home) ? config.home : resolve(process.cwd(), config.home);
  const missing = (what: string) =>
    usageError(
      `${what}: "gatehouse ${command}" works on the data folder of a Gatehouse server and does not create one. Select the server's data folder with ${LOCAL_SELECTORS}${options.hint ?? ''}`,
    );
  // A file that must exist: none for PostgreSQL or `:memory:`.
  const named = sqliteFileOf(config.storage.url, dataDir);
  const file = named === ':memory:' ? undefined : named;
  if (file !== undefined && !existsSync(file))
    throw missing(`No Gatehouse database "${file}" in the data folder "${dataDir}"`);
  const db = await createDatabase(config.storage, { dataDir, log });
  try {
    // A database that does not answer is not one without Gatehouse data: say which it is.
    await db.ping(config.storage.connectTimeout);
  } catch (error) {
    await db.close();
    if (isGatewayError(error)) throw error;
    throw new GatewayError('GW_ERR_STORAGE_UNAVAILABLE', {
      message: `The configured database does not answer: ${error instanceof Error ? error.message : String(error)}`,
      cause: error,
    });
  }
  try {
    // A server migrates its database at the first start; without that record it is not one.
    await db.kysely().selectFrom(MIGRATIONS_TABLE).select('id').limit(1).execute();
  } catch {
    await db.close();
    throw missing(
      file === undefined
        ? 'The configured database holds no Gatehouse data'
        : `"${file}" is not a Gatehouse database`,
    );
  }
  return { config, dataDir, db, log, close: () => db.close() };
}

function reportInvalid(ctx: CommandContext, error: ConfigValidationError): number {
  if (ctx.out.json) {
    ctx.out.result({ valid: false, origin: error.origin, issues: error.issues });
  } else {
    ctx.out.error(`${error.origin} is not valid (${error.issues.length} problem(s)):`);
    for (const issue of error.issues) {
      const from = issue.source === undefined ? '' : ctx.out.dim(` (from ${issue.source})`);
      ctx.out.note(`  ${ctx.out.bold(issue.path || '(document)')}: ${describeIssue(issue)}${from}`);
    }
  }
  return EXIT.usage;
}

const configFile = (ctx: CommandContext) => ctx.flag('config') ?? ctx.env['GATEHOUSE_CONFIG'];

export const configCommands: readonly CommandSpec[] = [
  {
    name: 'config validate',
    summary: 'Check a configuration file (and GATEHOUSE_* overrides) without starting anything',
    usage: 'FILE',
    args: { min: 1, max: 1 },
    async run(ctx) {
      const file = ctx.args[0];
      try {
        const loaded = await loadEffectiveConfig(ctx, file);
        for (const warning of loaded.warnings) ctx.out.note(`${ctx.out.bold('warning')}: ${warning}`);
        ctx.out.result({ valid: true, file, warnings: loaded.warnings }, () =>
          ctx.out.line(`${ctx.out.green('valid')}: ${file}`),
        );
        return EXIT.ok;
      } catch (error) {
        if (error instanceof ConfigValidationError) return reportInvalid(ctx, error);
        throw error;
      }
    },
  },
  {
    name: 'config print',
    summary: 'Print the effective configuration (defaults, file, environment) with secrets redacted',
    flags: [CONFIG_FLAG],
    args: { max: 0 },
    async run(ctx) {
      try {
        const loaded = await loadEffectiveConfig(ctx, configFile(ctx));
        const shown = redact(gatehouseConfigSchema as Schema<unknown>, loaded.config);
        ctx.out.result(shown, () => ctx.out.lines(stringify(shown).trimEnd()));
        return EXIT.ok;
      } catch (error) {
        if (error instanceof ConfigValidationError) return reportInvalid(ctx, error);
        throw error;
      }
    },
  },
];
