/**
 * `gatehouse policies add|list|remove`: the edge door's L7 route policies through the admin API
 * (`/api/edge/policies`): block a User-Agent substring or require a header.
 */
import type { EdgePolicy } from '../doors/edge/index.ts';
import { type CommandSpec, EXIT, usageError } from './framework.ts';
import { edgeRemoveCommand } from './routes.ts';

const policiesList: CommandSpec = {
  name: 'policies list',
  summary: 'List edge L7 policies (edge:read)',
  args: { max: 0 },
  async run(ctx) {
    const { policies } = await (await ctx.client()).request<{ policies: EdgePolicy[] }>(
      'GET',
      '/api/edge/policies',
    );
    ctx.out.table(policies, [
      { header: 'ID', value: (p) => p.id },
      { header: 'ROUTE', value: (p) => p.route },
      { header: 'KIND', value: (p) => p.kind },
      { header: 'HEADER', value: (p) => p.header ?? '' },
      { header: 'VALUE', value: (p) => p.value ?? '' },
    ]);
    return EXIT.ok;
  },
};

const policiesAdd: CommandSpec = {
  name: 'policies add',
  summary: 'Add an edge L7 policy to a route (edge:write)',
  usage: 'ID',
  args: { min: 1, max: 1 },
  flags: [
    {
      name: 'route',
      type: 'string',
      required: true,
      value: 'ID',
      description: 'L7 route the policy guards',
    },
    {
      name: 'block-user-agent',
      type: 'string',
      value: 'TEXT',
      description: 'Refuse User-Agents containing TEXT',
    },
    {
      name: 'require-header',
      type: 'string',
      value: 'NAME',
      description: 'Refuse requests without header NAME',
    },
    { name: 'value', type: 'string', value: 'TEXT', description: 'With --require-header: the exact value' },
  ],
  async run(ctx) {
    const agent = ctx.flag('block-user-agent');
    const header = ctx.flag('require-header');
    if ((agent === undefined) === (header === undefined)) {
      throw usageError('Give exactly one of "--block-user-agent" and "--require-header"');
    }
    const value = ctx.flag('value');
    const body =
      agent === undefined
        ? { kind: 'require-header', header, ...(value === undefined ? {} : { value }) }
        : { kind: 'block-user-agent', value: agent };
    const policy = await (await ctx.client()).request<EdgePolicy>('POST', '/api/edge/policies', {
      body: { id: ctx.args[0], route: ctx.flag('route'), ...body },
    });
    ctx.out.result(policy, () =>
      ctx.out.line(`Added policy ${ctx.out.bold(policy.id)} to route ${policy.route}`),
    );
    return EXIT.ok;
  },
};

const policiesRemove = edgeRemoveCommand('policies', 'policies', 'L7 policy');

/** The `policies` command group (edge L7 policies). */
export const edgePoliciesCommands: readonly CommandSpec[] = [policiesList, policiesAdd, policiesRemove];
