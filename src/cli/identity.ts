import { createInterface } from 'node:readline/promises';
import { type ApiKey, type UnlockResult, unlockUser, type User } from '#core/auth';
import { systemClock } from '#core/clock';
import { isGatewayError } from '#core/errors';
import { ROLES, type Role, type RoleBinding } from '#core/rbac';
import { CliError, forgetSavedLogin, readSavedLogin, sameServer, saveLogin } from './client.ts';
import { CONFIG_FLAG, openLocalStorage } from './config.ts';
import { type CommandContext, type CommandSpec, EXIT, type FlagSpec, usageError } from './framework.ts';

const BINDING_FLAGS: readonly FlagSpec[] = [
  {
    name: 'role',
    type: 'list',
    value: 'ROLE',
    description: `Role to grant (repeatable): ${ROLES.join(', ')}`,
  },
  {
    name: 'namespace',
    type: 'string',
    value: 'NS',
    description: 'Namespace of the roles (default "*": all)',
  },
];

/** `--role admin --role auditor --namespace team-a` → bindings, validated here for a clear message. */
function bindingsOf(ctx: CommandContext): RoleBinding[] {
  const roles = ctx.flags['role'];
  const namespace = ctx.flag('namespace') ?? '*';
  const list = Array.isArray(roles) ? roles : [];
  return list.map((role) => {
    if (!(ROLES as readonly string[]).includes(role))
      throw usageError(`Unknown role "${role}"; roles are ${ROLES.join(', ')}`);
    return { role: role as Role, namespace };
  });
}

const showBindings = (bindings: readonly RoleBinding[]) =>
  bindings.map((b) => (b.namespace === '*' ? b.role : `${b.role}@${b.namespace}`)).join(', ');

/** Reads a secret from stdin: typed at a terminal without echo, or piped. */
async function readSecret(ctx: CommandContext, prompt: string): Promise<string> {
  const stdin = ctx.stdin as NodeJS.ReadStream;
  if (stdin.isTTY !== true) {
    let text = '';
    for await (const chunk of stdin) text += String(chunk);
    const secret = text.replace(/\r?\n$/, '');
    // Nothing piped (a script without a terminal, GATEHOUSE_PASSWORD unset): the server's
    // "body/password must NOT have fewer than 1 characters" would not say what is missing.
    if (secret === '')
      throw usageError(
        'No password on standard input: pipe it with --password-stdin, set GATEHOUSE_PASSWORD, or run at a terminal to be asked',
      );
    return secret;
  }
  const rl = createInterface({ input: stdin, output: process.stderr, terminal: true });
  const muted = rl as unknown as { _writeToOutput: (s: string) => void };
  process.stderr.write(prompt);
  muted._writeToOutput = () => {};
  try {
    return await rl.question('');
  } finally {
    rl.close();
    process.stderr.write('\n');
  }
}

async function passwordFlag(ctx: CommandContext, prompt: string): Promise<string> {
  if (ctx.flags['password-stdin'] === true) return readSecret(ctx, prompt);
  const env = ctx.env['GATEHOUSE_PASSWORD'];
  if (env !== undefined && env !== '') return env;
  return readSecret(ctx, prompt);
}

const login: CommandSpec = {
  name: 'login',
  summary: 'Log in and save the tokens for later commands (~/.config/gatehouse/credentials.json)',
  flags: [
    { name: 'username', type: 'string', value: 'NAME', description: 'User name', required: true },
    {
      name: 'password-stdin',
      type: 'boolean',
      description: 'Read the password from standard input (else GATEHOUSE_PASSWORD or a prompt)',
    },
  ],
  args: { max: 0 },
  async run(ctx) {
    const client = await ctx.client();
    const username = ctx.flag('username') ?? '';
    const password = await passwordFlag(ctx, `Password for ${username}: `);
    const pair = await client.request<{ accessToken: string; refreshToken: string; expiresIn: number }>(
      'POST',
      '/api/auth/login',
      { body: { username, password }, anonymous: true },
    );
    const path = await saveLogin(ctx.env, {
      server: client.server,
      accessToken: pair.accessToken,
      refreshToken: pair.refreshToken,
      expiresAt: Date.now() + pair.expiresIn * 1000,
      username,
    });
    ctx.out.result({ server: client.server, username, saved: path }, () =>
      ctx.out.line(`Logged in to ${client.server} as ${ctx.out.bold(username)}`),
    );
    return EXIT.ok;
  },
};

const usersLs: CommandSpec = {
  name: 'users ls',
  summary: 'List users (admin)',
  args: { max: 0 },
  async run(ctx) {
    const { users } = await (await ctx.client()).request<{ users: User[] }>('GET', '/api/users');
    ctx.out.table(users, [
      { header: 'USERNAME', value: (u) => u.username },
      { header: 'ROLES', value: (u) => showBindings(u.roles) },
      {
        header: 'STATE',
        value: (u) => (u.disabled ? 'disabled' : u.lockedUntil === undefined ? 'active' : 'locked'),
      },
      { header: 'LAST LOGIN', value: (u) => u.lastLoginAt ?? '' },
      { header: 'ID', value: (u) => u.id },
    ]);
    return EXIT.ok;
  },
};

const usersAdd: CommandSpec = {
  name: 'users add',
  summary: 'Create a user (admin); the password comes from a prompt, --password-stdin or GATEHOUSE_PASSWORD',
  usage: 'USERNAME',
  args: { min: 1, max: 1 },
  flags: [
    ...BINDING_FLAGS,
    { name: 'password-stdin', type: 'boolean', description: 'Read the password from standard input' },
  ],
  async run(ctx) {
    const username = ctx.args[0] ?? '';
    const roles = bindingsOf(ctx);
    const password = await passwordFlag(ctx, `Password for ${username}: `);
    const user = await (await ctx.client()).request<User>('POST', '/api/users', {
      body: { username, password, roles },
    });
    ctx.out.result(user, () =>
      ctx.out.line(`Created ${ctx.out.bold(user.username)} (${showBindings(user.roles) || 'no roles'})`),
    );
    return EXIT.ok;
  },
};

const usersSet: CommandSpec = {
  name: 'users set',
  summary: 'Replace the roles of a user, or disable/enable it (admin)',
  usage: 'USERNAME',
  args: { min: 1, max: 1 },
  flags: [
    ...BINDING_FLAGS,
    { name: 'disable', type: 'boolean', description: 'Disable the account' },
    { name: 'enable', type: 'boolean', description: 'Enable the account' },
  ],
  async run(ctx) {
    const body: Record<string, unknown> = {};
    if (ctx.flags['role'] !== undefined) body['roles'] = bindingsOf(ctx);
    if (ctx.flags['disable'] === true && ctx.flags['enable'] === true)
      throw usageError('Use only one of --disable and --enable');
    if (ctx.flags['disable'] === true) body['disabled'] = true;
    if (ctx.flags['enable'] === true) body['disabled'] = false;
    if (Object.keys(body).length === 0)
      throw usageError('Nothing to change: give --role, --disable or --enable');
    const name = encodeURIComponent(ctx.args[0] ?? '');
    const user = await (await ctx.client()).request<User>('PATCH', `/api/users/${name}`, { body });
    ctx.out.result(user, () =>
      ctx.out.line(
        `Updated ${ctx.out.bold(user.username)}: ${showBindings(user.roles) || 'no roles'}${user.disabled ? ', disabled' : ''}`,
      ),
    );
    return EXIT.ok;
  },
};

const usersPasswd: CommandSpec = {
  name: 'users passwd',
  summary: 'Set the password of a user (admin)',
  usage: 'USERNAME',
  args: { min: 1, max: 1 },
  flags: [
    { name: 'password-stdin', type: 'boolean', description: 'Read the new password from standard input' },
  ],
  async run(ctx) {
    const password = await passwordFlag(ctx, 'New password: ');
    const name = encodeURIComponent(ctx.args[0] ?? '');
    await (await ctx.client()).request('PUT', `/api/users/${name}/password`, { body: { password } });
    ctx.out.result({ ok: true }, () => ctx.out.line('Password changed'));
    return EXIT.ok;
  },
};

const usersRm: CommandSpec = {
  name: 'users rm',
  summary: 'Delete a user (admin)',
  usage: 'USERNAME',
  args: { min: 1, max: 1 },
  async run(ctx) {
    const name = ctx.args[0] ?? '';
    await (await ctx.client()).request('DELETE', `/api/users/${encodeURIComponent(name)}`);
    ctx.out.result({ deleted: name }, () => ctx.out.line(`Deleted ${name}`));
    return EXIT.ok;
  },
};

const usersUnlock: CommandSpec = {
  name: 'users unlock',
  summary:
    'Clear the failed-login locks of a user (every address and the account-wide backoff), directly on the database: works while the server is down; --api asks the running server instead, which audits it',
  usage: 'USERNAME',
  args: { min: 1, max: 1 },
  flags: [
    {
      name: 'api',
      type: 'boolean',
      description: 'Unlock through the running server (needs a login with users:write; audited)',
    },
    CONFIG_FLAG,
  ],
  async run(ctx) {
    const name = ctx.args[0] ?? '';
    const print = (result: UnlockResult) =>
      ctx.out.result(result, () => {
        const what =
          result.addresses === 0 && !result.accountBackoff
            ? 'it had no failed logins'
            : `cleared the failed logins of ${result.addresses} client address(es)${result.accountBackoff ? ' and the account-wide backoff' : ''}`;
        ctx.out.line(`Unlocked ${ctx.out.bold(result.username)} (${result.id}): ${what}`);
      });
    if (ctx.flags['api'] === true) {
      const client = await ctx.client();
      print(await client.request<UnlockResult>('POST', `/api/users/${encodeURIComponent(name)}/unlock`));
      return EXIT.ok;
    }
    // A server named on the command line or in GATEHOUSE_URL is not ignored: it takes --api (a
    // saved login alone does not: the data folder is this command's default, for a locked-out
    // admin whose server may be down).
    const server = ctx.flag('server') ?? ctx.env['GATEHOUSE_URL'];
    if (server !== undefined && server !== '')
      throw usageError(
        `"gatehouse users unlock" works on the data folder unless --api is given; add --api to unlock through the server at ${server}`,
      );
    const local = await openLocalStorage(ctx, { existing: 'users unlock' });
    try {
      print(await unlockUser(local.db, systemClock, name));
      return EXIT.ok;
    } catch (error) {
      if (isGatewayError(error) && error.code === 'GW_ERR_USER_NOT_FOUND')
        throw new CliError(`No user "${name}" in the database of this configuration`, { code: error.code });
      throw error;
    } finally {
      await local.close();
    }
  },
};

const rolesLs: CommandSpec = {
  name: 'roles ls',
  summary: 'List roles and the actions each grants',
  args: { max: 0 },
  async run(ctx) {
    const { roles } = await (await ctx.client()).request<{ roles: { role: string; actions: string[] }[] }>(
      'GET',
      '/api/roles',
    );
    ctx.out.table(roles, [
      { header: 'ROLE', value: (r) => r.role },
      { header: 'ACTIONS', value: (r) => r.actions.join(' ') },
    ]);
    return EXIT.ok;
  },
};

const keysLs: CommandSpec = {
  name: 'keys ls',
  summary: 'List your API keys (admins see all)',
  args: { max: 0 },
  async run(ctx) {
    const { keys } = await (await ctx.client()).request<{ keys: ApiKey[] }>('GET', '/api/keys');
    ctx.out.table(keys, [
      { header: 'ID', value: (k) => k.id },
      { header: 'NAME', value: (k) => k.name },
      { header: 'ROLES', value: (k) => showBindings(k.bindings) },
      { header: 'EXPIRES', value: (k) => k.expiresAt ?? 'never' },
      { header: 'STATE', value: (k) => (k.revokedAt === undefined ? 'active' : 'revoked') },
      { header: 'LAST USED', value: (k) => k.lastUsedAt ?? '' },
    ]);
    return EXIT.ok;
  },
};

/** An ISO 8601 date, or date and time with an optional UTC offset (`Z`, `+02:00`, `+0200`). */
const ISO_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * `--expires`: an ISO 8601 time, as the flag says: a date (`2027-01-31`, midnight UTC) or a date
 * and time (`2027-01-31T12:00:00Z`, `2027-01-31T14:00+02:00`; without an offset, UTC), sent to
 * the API as the RFC 3339 date-time it takes. Anything else is a usage error naming the flag.
 */
function expiresAt(text: string): string {
  const match = ISO_TIME.exec(text);
  const [year, month, day, hour, minute, second] = (match?.slice(1, 7) ?? []).map((n) => Number(n ?? 0));
  const offset = match?.[8] ?? 'Z';
  const date =
    match === null
      ? undefined
      : new Date(Date.UTC(year ?? 0, (month ?? 1) - 1, day ?? 0, hour ?? 0, minute ?? 0, second ?? 0));
  // Date.UTC rolls 2027-02-30 over into March and 24:00 into the next day: refuse instead.
  const valid =
    date !== undefined &&
    year !== undefined &&
    date.getUTCFullYear() === year &&
    date.getUTCMonth() + 1 === month &&
    date.getUTCDate() === day &&
    date.getUTCHours() === hour &&
    date.getUTCMinutes() === minute &&
    date.getUTCSeconds() === second &&
    /^(?:Z|[+-](?:[01]\d|2[0-3]):?[0-5]\d)$/i.test(offset);
  if (!valid)
    throw usageError(
      `Invalid "--expires" "${text}": expected an ISO 8601 time such as "2027-01-31" (midnight UTC), "2027-01-31T12:00:00Z" or "2027-01-31T14:00+02:00"`,
    );
  const fraction = match?.[7] ?? '';
  const zone = offset.toUpperCase() === 'Z' ? 'Z' : `${offset.slice(0, 3)}:${offset.slice(-2)}`;
  return `${text.slice(0, 10)}T${String(hour).padStart(2, '0')}:${String(minute).padStart(2, '0')}:${String(second).padStart(2, '0')}${fraction}${zone}`;
}

const keysAdd: CommandSpec = {
  name: 'keys add',
  summary: 'Create an API key; its secret is shown once',
  usage: 'NAME',
  args: { min: 1, max: 1 },
  flags: [
    ...BINDING_FLAGS,
    {
      name: 'expires',
      type: 'string',
      value: 'TIME',
      description: 'Expiry as an ISO 8601 time, e.g. 2027-01-31 (midnight UTC) or 2027-01-31T12:00:00Z',
    },
    {
      name: 'allow-cidr',
      type: 'list',
      value: 'CIDR',
      description: 'Only accept the key from this address range (repeatable)',
    },
  ],
  async run(ctx) {
    const bindings = bindingsOf(ctx);
    if (bindings.length === 0) throw usageError('An API key needs at least one --role');
    const cidrs = ctx.flags['allow-cidr'];
    const flag = ctx.flag('expires');
    const expires = flag === undefined ? undefined : expiresAt(flag);
    const body = {
      name: ctx.args[0],
      bindings,
      ...(expires === undefined ? {} : { expiresAt: expires }),
      ...(Array.isArray(cidrs) ? { allowedCidrs: cidrs } : {}),
    };
    const key = await (await ctx.client()).request<ApiKey & { secret: string }>('POST', '/api/keys', {
      body,
    });
    ctx.out.result(key, () => {
      ctx.out.line(`Created API key ${ctx.out.bold(key.name)} (${key.id}). The secret is shown once:`);
      ctx.out.line(`  ${key.secret}`);
    });
    return EXIT.ok;
  },
};

const keysRm: CommandSpec = {
  name: 'keys rm',
  summary: 'Revoke an API key',
  usage: 'ID',
  args: { min: 1, max: 1 },
  async run(ctx) {
    const id = ctx.args[0] ?? '';
    await (await ctx.client()).request('DELETE', `/api/keys/${encodeURIComponent(id)}`);
    ctx.out.result({ revoked: id }, () => ctx.out.line(`Revoked ${id}`));
    return EXIT.ok;
  },
};

const logout: CommandSpec = {
  name: 'logout',
  summary: 'Revoke the saved session on the server and remove the saved login',
  args: { max: 0 },
  async run(ctx) {
    const client = await ctx.client();
    const token = ctx.flag('token') ?? ctx.env['GATEHOUSE_TOKEN'];
    const saved = token === undefined ? await readSavedLogin(ctx.env) : undefined;
    const savedHere = saved !== undefined && sameServer(saved.server, client.server);
    if (token === undefined && !savedHere)
      throw new CliError(`Not logged in to "${client.server}": no saved login, no --token`, {
        exitCode: EXIT.auth,
      });
    try {
      await client.request('POST', '/api/auth/logout', { body: {} });
    } catch (error) {
      if (!(error instanceof CliError && error.status === 401)) throw error;
    }
    // The session has ended (now, or before: 401); its tokens on disk are of no use but to confuse
    // the next command. On any other failure the file stays, so the session can still be revoked.
    if (savedHere) await forgetSavedLogin(ctx.env);
    ctx.out.result({ loggedOut: true }, () => ctx.out.line('Logged out'));
    return EXIT.ok;
  },
};

export const identityCommands: readonly CommandSpec[] = [
  login,
  logout,
  usersLs,
  usersAdd,
  usersSet,
  usersPasswd,
  usersUnlock,
  usersRm,
  rolesLs,
  keysLs,
  keysAdd,
  keysRm,
];
