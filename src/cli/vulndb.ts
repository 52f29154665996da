import { ConfigValidationError } from '#core/config';
import { systemClock } from '#core/clock';
import { createLogger } from '#core/log';
import { createDatabase } from '#core/storage';
import { type ImportStats, VulnerabilityDatabase } from '#core/vulndb';
import { CONFIG_FLAG, loadEffectiveConfig } from './config.ts';
import { ensureDataDir } from './core-services.ts';
import { type CommandContext, type CommandSpec, EXIT, usageError } from './framework.ts';

/** Opens the vulnerability database on the configured storage (the data folder by default). */
async function openLocal(
  ctx: CommandContext,
): Promise<{ vdb: VulnerabilityDatabase; close: () => Promise<void> }> {
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
  const vdb = new VulnerabilityDatabase({ db, clock: systemClock, config: config.registry.vulndb });
  await vdb.migrate();
  return { vdb, close: () => db.close() };
}

/** `gatehouse vulndb …`: load and inspect the OSV vulnerability database. */
export const vulndbCommands: readonly CommandSpec[] = [
  {
    name: 'vulndb import',
    summary: 'Import an OSV export (a per-ecosystem all.zip or a folder of JSON records), incrementally',
    usage: 'ZIP|DIR',
    args: { min: 1, max: 1 },
    flags: [CONFIG_FLAG],
    async run(ctx) {
      const source = ctx.args[0] as string;
      const { vdb, close } = await openLocal(ctx);
      let last = 0;
      try {
        const stats = await vdb.import(source, {
          signal: ctx.signal,
          onProgress: (s: Readonly<ImportStats>) => {
            const now = Date.now();
            if (ctx.out.json || now - last < 1000) return;
            last = now;
            ctx.out.note(
              `  ${s.read} records read: ${s.inserted} new, ${s.updated} updated, ${s.unchanged} unchanged`,
            );
          },
        });
        ctx.out.result(stats, () => {
          ctx.out.line(
            `${ctx.out.green('imported')} ${source}: ${stats.read} read, ${stats.inserted} new, ${stats.updated} updated, ${stats.unchanged} unchanged, ${stats.invalid} invalid`,
          );
          for (const name of stats.invalidSamples) ctx.out.note(`  invalid: ${name}`);
        });
        return EXIT.ok;
      } finally {
        await close();
      }
    },
  },
  {
    name: 'vulndb status',
    summary: 'Show how many advisories the database holds and when it was last updated',
    args: { max: 0 },
    flags: [CONFIG_FLAG],
    async run(ctx) {
      const { vdb, close } = await openLocal(ctx);
      try {
        const status = await vdb.status();
        ctx.out.result(status, () => {
          const when = status.updatedAt === undefined ? 'never' : new Date(status.updatedAt).toISOString();
          ctx.out.line(
            `${status.advisories} advisories; last import ${when}${status.online ? '; online OSV client on' : ''}`,
          );
        });
        return EXIT.ok;
      } finally {
        await close();
      }
    },
  },
];
