import { stringify } from 'yaml';
import { ConfigValidationError, loadConfig, redact, type Schema } from '#core/config';
import { createLogger, type Logger } from '#core/log';
import { createDatabase, type Database } from '#core/storage';
import { checkGatehouseConfig, gatehouseConfigSchema } from './config-schema.ts';
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

/**
 * Opens the configured database directly, without a server: `--config`/GATEHOUSE_CONFIG and
 * the environment select it exactly as `serve` would. An invalid configuration is a usage error.
 */
export async function openLocalStorage(ctx: CommandContext): Promise<LocalStorage> {
  let loaded: Awaited<ReturnType<typeof loadEffectiveConfig>>;
  try {
    loaded = await loadEffectiveConfig(ctx, ctx.flag('config') ?? ctx.env['GATEHOUSE_CONFIG']);
  } catch (error) {
    if (error instanceof ConfigValidationError) throw usageError(error.message);
    throw error;
  }
  const { config } = loaded;
  const log = createLogger({ level: 'error' });
  const dataDir = await ensureDataDir(config.home, process.cwd());
  const db = await createDatabase(config.storage, { dataDir, log });
  return { config, dataDir, db, log, close: () => db.close() };
}

function reportInvalid(ctx: CommandContext, error: ConfigValidationError): number {
  if (ctx.out.json) {
    ctx.out.result({ valid: false, origin: error.origin, issues: error.issues });
  } else {
    ctx.out.error(`${error.origin} is not valid (${error.issues.length} problem(s)):`);
    for (const issue of error.issues) {
      const value = issue.value === undefined ? 'missing' : JSON.stringify(issue.value);
      const from = issue.source === undefined ? '' : ctx.out.dim(` (from ${issue.source})`);
      ctx.out.note(
        `  ${ctx.out.bold(issue.path || '(document)')}: ${value}; expected ${issue.expected}${from}`,
      );
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
        for (const warning of loaded.warnings) ctx.out.error(warning);
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
