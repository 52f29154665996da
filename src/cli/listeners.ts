/**
 * `gatehouse listeners list|set-max-connections`: edge listener limits through the admin API
 * (`/api/edge/listeners`). A new limit applies to the next accepted connection.
 */
import { type CommandSpec, EXIT, usageError } from './framework.ts';

interface ListenerView {
  readonly id: string;
  readonly port: number;
  readonly maxConnections: number;
  readonly activeConnections: number;
}

const listenersList: CommandSpec = {
  name: 'listeners list',
  summary: 'List edge listeners with their limits and open connections (edge:read)',
  args: { max: 0 },
  async run(ctx) {
    const { listeners } = await (await ctx.client()).request<{ listeners: ListenerView[] }>(
      'GET',
      '/api/edge/listeners',
    );
    ctx.out.table(listeners, [
      { header: 'ID', value: (l) => l.id },
      { header: 'PORT', value: (l) => l.port, align: 'right' },
      { header: 'MAX', value: (l) => l.maxConnections, align: 'right' },
      { header: 'ACTIVE', value: (l) => l.activeConnections, align: 'right' },
    ]);
    return EXIT.ok;
  },
};

const setMaxConnections: CommandSpec = {
  name: 'listeners set-max-connections',
  summary: 'Change the concurrent connection limit of an edge listener (edge:write)',
  usage: 'ID MAX',
  args: { min: 2, max: 2 },
  async run(ctx) {
    const [id = '', text = ''] = ctx.args;
    const max = Number(text);
    if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(max) || max < 1) {
      throw usageError(`MAX must be a positive integer, got "${text}"`);
    }
    const view = await (await ctx.client()).request<ListenerView>(
      'PATCH',
      `/api/edge/listeners/${encodeURIComponent(id)}`,
      { body: { maxConnections: max } },
    );
    ctx.out.result(view, () =>
      ctx.out.line(`Listener ${ctx.out.bold(view.id)} now accepts ${view.maxConnections} connections`),
    );
    return EXIT.ok;
  },
};

/** The `listeners` command group (edge listener limits). */
export const listenersCommands: readonly CommandSpec[] = [listenersList, setMaxConnections];
