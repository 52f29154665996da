import { systemClock } from '#core/clock';
import { type ImportStats, type VulndbStatus, VulnerabilityDatabase } from '#core/vulndb';
import { CONFIG_FLAG, chooseTarget, type LocalStorage, localOnly, openLocalStorage } from './config.ts';
import { type CommandContext, type CommandSpec, EXIT } from './framework.ts';

/**
 * Opens the vulnerability database of the configured storage (the data folder by default). It
 * must be a server's database, except for an import into a data folder chosen by name (`create`:
 * --config, GATEHOUSE_CONFIG or GATEHOUSE_HOME), which prepares a server's folder before its
 * first start (an air-gapped install); the working directory's default folder is never made
 * silently, since an import there is lost if no server uses it.
 */
async function openLocal(
  ctx: CommandContext,
  command: string,
  options: { readonly hint?: string; readonly create?: boolean } = {},
): Promise<{ vdb: VulnerabilityDatabase; local: LocalStorage }> {
  const named = (ctx.flag('config') ?? ctx.env['GATEHOUSE_CONFIG'] ?? ctx.env['GATEHOUSE_HOME'] ?? '') !== '';
  const local = await openLocalStorage(
    ctx,
    options.create === true && named
      ? {}
      : { existing: command, ...(options.hint === undefined ? {} : { hint: options.hint }) },
  );
  try {
    const vdb = new VulnerabilityDatabase({
      db: local.db,
      clock: systemClock,
      config: local.config.registry.vulndb,
    });
    await vdb.migrate();
    return { vdb, local };
  } catch (error) {
    await local.close();
    throw error;
  }
}

function printStatus(ctx: CommandContext, status: VulndbStatus, where: string): number {
  ctx.out.result({ ...status, where }, () => {
    const when = status.updatedAt === undefined ? 'never' : new Date(status.updatedAt).toISOString();
    ctx.out.line(
      `${status.advisories} advisories; last import ${when}${status.online ? '; online OSV client on' : ''} (${where})`,
    );
  });
  return EXIT.ok;
}

/** `gatehouse vulndb …`: load and inspect the OSV vulnerability database. */
export const vulndbCommands: readonly CommandSpec[] = [
  {
    name: 'vulndb import',
    summary:
      'Import an OSV export (a per-ecosystem all.zip or a folder of JSON records), incrementally, into the database of the data folder (--config, GATEHOUSE_CONFIG, GATEHOUSE_HOME; a folder named so is prepared before its first start); not through a server',
    usage: 'ZIP|DIR',
    args: { min: 1, max: 1 },
    flags: [CONFIG_FLAG],
    async run(ctx) {
      const source = ctx.args[0] as string;
      const target = await chooseTarget(ctx, 'vulndb import');
      if (target.kind === 'server') throw localOnly('vulndb import', target);
      const { vdb, local } = await openLocal(ctx, 'vulndb import', { create: true });
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
            `${ctx.out.green('imported')} ${source}: ${stats.read} read, ${stats.inserted} new, ${stats.updated} updated, ${stats.unchanged} unchanged, ${stats.invalid} invalid (data folder "${local.dataDir}")`,
          );
          for (const name of stats.invalidSamples) ctx.out.note(`  invalid: ${name}`);
        });
        return EXIT.ok;
      } finally {
        await local.close();
      }
    },
  },
  {
    name: 'vulndb status',
    summary:
      'Show how many advisories the database holds and when it was last updated: on the server (--server, GATEHOUSE_URL, saved login) or on the data folder (--config, GATEHOUSE_CONFIG, GATEHOUSE_HOME)',
    args: { max: 0 },
    flags: [CONFIG_FLAG],
    async run(ctx) {
      const target = await chooseTarget(ctx, 'vulndb status');
      if (target.kind === 'server') {
        const client = await ctx.client();
        return printStatus(
          ctx,
          await client.request<VulndbStatus>('GET', '/api/registry/vulndb'),
          client.server,
        );
      }
      const { vdb, local } = await openLocal(ctx, 'vulndb status', {
        hint: ', or ask a running server with --server URL',
      });
      try {
        return printStatus(ctx, await vdb.status(), `data folder "${local.dataDir}"`);
      } finally {
        await local.close();
      }
    },
  },
];
