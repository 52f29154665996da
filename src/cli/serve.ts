import { flushCompileCache } from 'node:module';
import { installSignalHandlers } from '#core/app';
import { ConfigValidationError, describeIssue } from '#core/config';
import { isGatewayError } from '#core/errors';
import { CONFIG_FLAG } from './config.ts';
import { type CommandSpec, EXIT } from './framework.ts';
import { passwordBootstrappedBefore, startGateway } from './gateway.ts';

/** The line `serve` prints when it listens; the process test harness waits for it. */
export const LISTENING_PREFIX = 'Gatehouse listening on ';

export const serveCommands: readonly CommandSpec[] = [
  {
    name: 'serve',
    summary: 'Run the gateway (with no configuration: the embedded default in ./.gatehouse)',
    flags: [
      CONFIG_FLAG,
      {
        name: 'listen',
        type: 'string',
        value: 'HOST:PORT',
        description: 'Main HTTP listener (or GATEHOUSE_LISTEN)',
      },
    ],
    args: { max: 0 },
    async run(ctx) {
      const configFile = ctx.flag('config') ?? ctx.env['GATEHOUSE_CONFIG'];
      const listen = ctx.flag('listen');
      const showPassword = (password: string) => {
        ctx.out.line(ctx.out.bold('Bootstrapped the admin account. This password is shown once:'));
        ctx.out.line(`  username: admin`);
        ctx.out.line(`  password: ${password}`);
      };
      let gateway: Awaited<ReturnType<typeof startGateway>>;
      try {
        gateway = await startGateway({
          env: ctx.env,
          cwd: process.cwd(),
          watchConfig: true,
          ...(configFile === undefined ? {} : { configFile }),
          ...(listen === undefined ? {} : { overrides: { 'server.listen': listen } }),
        });
      } catch (error) {
        if (error instanceof ConfigValidationError) {
          ctx.out.error(`Cannot start: ${error.origin} is not valid`);
          for (const issue of error.issues) {
            const from = issue.source === undefined ? '' : ` (from ${issue.source})`;
            ctx.out.note(`  ${issue.path || '(document)'}: ${describeIssue(issue)}${from}`);
          }
          return EXIT.usage;
        }
        const message = error instanceof Error ? error.message : String(error);
        const code = isGatewayError(error) ? ` (${error.code})` : '';
        ctx.out.error(`Cannot start: ${message}${code}`);
        const password = passwordBootstrappedBefore(error);
        if (password !== undefined) {
          ctx.out.line('The admin account was created before the start failed; it stays.');
          showPassword(password);
        }
        return EXIT.error;
      }
      if (gateway.adminPassword !== undefined) showPassword(gateway.adminPassword);
      ctx.out.line(`${LISTENING_PREFIX}${gateway.url}`);
      // Every module is loaded now: write the compile cache (when `npm start` enabled it, ADR
      // 0101) so the next start skips type stripping even if this process is killed.
      flushCompileCache();
      return await new Promise<number>((resolve) => {
        installSignalHandlers({
          onShutdown: async (signal) => {
            gateway.log.info('Shutting down', { signal });
            await gateway.stop();
          },
          onReload: () => gateway.reload(),
          forceAfterMs: gateway.config.current.server.shutdownTimeout + 5000,
          exit: (code) => resolve(code),
        });
      });
    },
  },
];
