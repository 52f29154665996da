import { join } from 'node:path';
import { type AuditEvent, type AuditPage, type AuditVerification, createAuditLog } from '#core/audit';
import { systemClock } from '#core/clock';
import { createMetrics } from '#core/metrics';
import { CliError } from './client.ts';
import { CONFIG_FLAG, chooseTarget, openLocalStorage } from './config.ts';
import { type CommandContext, type CommandSpec, EXIT } from './framework.ts';

/** Verifies the chain directly on the data folder (works while the server is down). */
async function verifyLocally(ctx: CommandContext): Promise<{ result: AuditVerification; where: string }> {
  const local = await openLocalStorage(ctx, {
    existing: 'audit verify',
    hint: ', or verify on a running server with --server URL',
  });
  try {
    const audit = await createAuditLog({
      db: local.db,
      file: join(local.dataDir, local.config.audit.file),
      clock: systemClock,
      log: local.log,
      metrics: createMetrics(),
    });
    return { result: await audit.verify(), where: `data folder "${local.dataDir}"` };
  } finally {
    await local.close();
  }
}

function printVerification(ctx: CommandContext, result: AuditVerification, where: string): number {
  ctx.out.result({ ...result, where }, () => {
    if (result.ok)
      ctx.out.line(`${ctx.out.green('ok')}: ${result.checked} audit record(s) verified (${where})`);
    else {
      ctx.out.line(
        `${ctx.out.red('broken')}: the audit chain is broken at record ${result.firstBad?.seq} (${where})`,
      );
      ctx.out.line(`  ${result.firstBad?.problem ?? ''}`);
    }
  });
  return result.ok ? EXIT.ok : EXIT.error;
}

export const auditCommands: readonly CommandSpec[] = [
  {
    name: 'audit verify',
    summary:
      "Verify the audit log's hash chain on the server (--server, GATEHOUSE_URL, saved login) or, while it is down, on its data folder (--config, GATEHOUSE_CONFIG, GATEHOUSE_HOME)",
    flags: [CONFIG_FLAG],
    args: { max: 0 },
    async run(ctx) {
      const target = await chooseTarget(ctx, 'audit verify');
      if (target.kind === 'local') {
        const { result, where } = await verifyLocally(ctx);
        return printVerification(ctx, result, where);
      }
      const client = await ctx.client();
      try {
        const result = await client.request<AuditVerification>('GET', '/api/audit-logs/verify');
        return printVerification(ctx, result, client.server);
      } catch (error) {
        if (error instanceof CliError && error.code === 'GW_ERR_AUDIT_CHAIN_BROKEN') {
          ctx.out.result({ ok: false, where: client.server, message: error.message }, () =>
            ctx.out.line(`${ctx.out.red('broken')}: ${error.message}`),
          );
          return EXIT.error;
        }
        throw error;
      }
    },
  },
  {
    name: 'audit ls',
    summary: 'List audit events, newest first (auditor or admin)',
    flags: [
      { name: 'actor', type: 'string', value: 'ID', description: 'Only events of this principal' },
      { name: 'action', type: 'string', value: 'ACTION', description: 'Only this action, e.g. auth.login' },
      { name: 'resource', type: 'string', value: 'PREFIX', description: 'Resource prefix' },
      { name: 'decision', type: 'string', value: 'allow|deny|error|info', description: 'Only this decision' },
      { name: 'from', type: 'string', value: 'TIME', description: 'ISO time lower bound' },
      { name: 'to', type: 'string', value: 'TIME', description: 'ISO time upper bound' },
      { name: 'limit', type: 'number', value: 'N', description: 'Page size (default 50)' },
      { name: 'cursor', type: 'string', value: 'CURSOR', description: 'Continue after a previous page' },
    ],
    args: { max: 0 },
    async run(ctx) {
      const client = await ctx.client();
      const query: Record<string, string | number | undefined> = { limit: Number(ctx.flags['limit'] ?? 50) };
      for (const name of ['actor', 'action', 'resource', 'decision', 'from', 'to', 'cursor'])
        query[name] = ctx.flag(name);
      const page = await client.request<AuditPage>('GET', '/api/audit-logs', { query });
      if (ctx.out.json) {
        ctx.out.result(page);
        return EXIT.ok;
      }
      ctx.out.table<AuditEvent>(page.events, [
        { header: 'SEQ', value: (e) => e.seq, align: 'right' },
        { header: 'TIME', value: (e) => e.time },
        { header: 'ACTOR', value: (e) => e.actor },
        { header: 'ACTION', value: (e) => e.action },
        { header: 'RESOURCE', value: (e) => e.resource },
        { header: 'DECISION', value: (e) => e.decision },
        { header: 'REASON', value: (e) => e.reason ?? '' },
      ]);
      if (page.nextCursor !== undefined) ctx.out.line(ctx.out.dim(`more: --cursor ${page.nextCursor}`));
      return EXIT.ok;
    },
  },
];
