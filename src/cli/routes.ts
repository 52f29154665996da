/**
 * `gatehouse routes add|list|remove`: the edge door's SNI routes through the admin API
 * (`/api/edge/routes`). Changes apply at once on the server, with no restart.
 */
import type { EdgeRoute } from '../doors/edge/index.ts';
import { type CommandSpec, EXIT } from './framework.ts';

const routesList: CommandSpec = {
  name: 'routes list',
  summary: 'List edge routes (edge:read)',
  args: { max: 0 },
  async run(ctx) {
    const { routes } = await (await ctx.client()).request<{ routes: EdgeRoute[] }>('GET', '/api/edge/routes');
    ctx.out.table(routes, [
      { header: 'ID', value: (r) => r.id },
      { header: 'LISTENER', value: (r) => r.listener },
      { header: 'HOST', value: (r) => r.host },
      { header: 'MODE', value: (r) => r.mode },
      { header: 'BACKEND', value: (r) => r.backend },
      { header: 'PROTOCOL', value: (r) => (r.mode === 'l7' ? r.backendProtocol : 'tcp') },
      { header: 'PROXY', value: (r) => (r.backendProxyProtocol ? 'v2' : '') },
    ]);
    return EXIT.ok;
  },
};

const routesAdd: CommandSpec = {
  name: 'routes add',
  summary: 'Add an edge route (edge:write)',
  usage: 'ID',
  args: { min: 1, max: 1 },
  flags: [
    {
      name: 'listener',
      type: 'string',
      required: true,
      value: 'ID',
      description: 'Listener the route belongs to',
    },
    {
      name: 'host',
      type: 'string',
      required: true,
      value: 'NAME',
      description: 'SNI host (253 characters at most), "*.domain" or "*"',
    },
    { name: 'backend', type: 'string', required: true, value: 'HOST:PORT', description: 'Backend address' },
    {
      name: 'mode',
      type: 'string',
      value: 'l4|l7',
      description: 'l4 passthrough (default) or l7 termination',
    },
    {
      name: 'protocol',
      type: 'string',
      value: 'h2c|http1|h2|https',
      description: 'L7 backend protocol (http1 when absent; l7 only)',
    },
    {
      name: 'proxy-protocol',
      type: 'boolean',
      description: 'Send PROXY v2 (AUTHORITY = SNI) to the backend',
    },
    {
      name: 'cert',
      type: 'string',
      value: 'FILE',
      description: 'L7 certificate chain PEM (on the server; l7 only)',
    },
    {
      name: 'key',
      type: 'string',
      value: 'FILE',
      description: 'L7 private key PEM (on the server; l7 only)',
    },
    {
      name: 'backend-ca',
      type: 'string',
      value: 'FILE',
      description: 'CA PEM for an h2 or https backend (on the server; l7 only)',
    },
  ],
  async run(ctx) {
    const optional = (key: string, flag: string) => {
      const v = ctx.flag(flag);
      return v === undefined ? {} : { [key]: v };
    };
    const body = {
      id: ctx.args[0],
      listener: ctx.flag('listener'),
      host: ctx.flag('host'),
      backend: ctx.flag('backend'),
      mode: ctx.flag('mode') ?? 'l4',
      backendProxyProtocol: ctx.flags['proxy-protocol'] === true,
      ...optional('backendProtocol', 'protocol'),
      ...optional('certFile', 'cert'),
      ...optional('keyFile', 'key'),
      ...optional('backendCaFile', 'backend-ca'),
    };
    const route = await (await ctx.client()).request<EdgeRoute>('POST', '/api/edge/routes', { body });
    ctx.out.result(route, () =>
      ctx.out.line(
        `Added route ${ctx.out.bold(route.id)}: ${route.host} -> ${route.backend} (${route.mode})`,
      ),
    );
    return EXIT.ok;
  },
};

/** A `<group> remove ID` command that deletes `/api/edge/<collection>/ID`. */
export function edgeRemoveCommand(group: string, collection: string, what: string): CommandSpec {
  return {
    name: `${group} remove`,
    summary: `Remove an edge ${what} (edge:write)`,
    usage: 'ID',
    args: { min: 1, max: 1 },
    async run(ctx) {
      const id = ctx.args[0] ?? '';
      await (await ctx.client()).request('DELETE', `/api/edge/${collection}/${encodeURIComponent(id)}`);
      ctx.out.result({ removed: id }, () => ctx.out.line(`Removed ${what} ${ctx.out.bold(id)}`));
      return EXIT.ok;
    },
  };
}

const routesRemove = edgeRemoveCommand('routes', 'routes', 'route and its policies');

/** The `routes` command group. */
export const routesCommands: readonly CommandSpec[] = [routesList, routesAdd, routesRemove];
