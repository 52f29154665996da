import type { CommandSpec } from './framework.ts';
import { EXIT, usageError } from './framework.ts';

/** `gatehouse registry …`: operate the registry door on the server. */
export const registryCommands: readonly CommandSpec[] = [
  {
    name: 'registry cache invalidate',
    summary: 'Drop cached metadata of one package, an ecosystem, or everything, on every replica',
    usage: '[NAME]',
    args: { max: 1 },
    flags: [
      {
        name: 'ecosystem',
        type: 'string',
        value: 'npm|pypi|go|maven|oci',
        description: 'Only this ecosystem',
      },
    ],
    async run(ctx) {
      const ecosystem = ctx.flag('ecosystem');
      const name = ctx.args[0];
      if (name !== undefined && ecosystem === undefined)
        throw usageError('Give --ecosystem with a package name');
      const client = await ctx.client();
      const result = await client.request<{ removed: number }>('DELETE', '/api/registry/cache', {
        query: { ecosystem, name },
      });
      ctx.out.result(result, () =>
        ctx.out.line(`${result.removed} cache entries removed (other replicas drop theirs too)`),
      );
      return EXIT.ok;
    },
  },
];
