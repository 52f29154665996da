import type { Readable, Writable } from 'node:stream';
import type { Environment } from '#core/config';
import { isGatewayError } from '#core/errors';
import { type ApiClient, CliError, createApiClient, readSavedLogin, sameServer } from './client.ts';
import { createOutput, type Output } from './output.ts';

export type FlagType = 'boolean' | 'string' | 'number' | 'list';

export interface FlagSpec {
  readonly name: string;
  readonly type: FlagType;
  readonly description: string;
  readonly short?: string;
  readonly required?: boolean;
  /** Placeholder in help, e.g. `FILE`. */
  readonly value?: string;
}

export type FlagValues = Readonly<Record<string, string | number | boolean | readonly string[] | undefined>>;

/** What a command receives. */
export interface CommandContext {
  /** Positional arguments after the command words. */
  readonly args: readonly string[];
  readonly flags: FlagValues;
  readonly out: Output;
  readonly env: Environment;
  readonly stdin: Readable;
  /** The API client for `--server`/`--token`, `GATEHOUSE_URL`/`GATEHOUSE_TOKEN` or the saved login. */
  client(): Promise<ApiClient>;
  /** Reads a string flag, throwing a usage error when a required one is missing. */
  flag(name: string): string | undefined;
  /** Aborted on SIGINT so long transfers stop cleanly. */
  readonly signal: AbortSignal;
}

export interface CommandSpec {
  /** Command words, e.g. `routes add`. */
  readonly name: string;
  readonly summary: string;
  /** Positional arguments for help, e.g. `FILE`. */
  readonly usage?: string;
  readonly flags?: readonly FlagSpec[];
  /** Minimum and maximum positional arguments. */
  readonly args?: { readonly min?: number; readonly max?: number };
  /** Returns the exit code (0 when omitted). */
  run(ctx: CommandContext): Promise<number | undefined> | number | undefined;
}

/** Flags every command accepts. */
export const GLOBAL_FLAGS: readonly FlagSpec[] = [
  { name: 'json', type: 'boolean', description: 'Print machine-readable JSON' },
  { name: 'server', type: 'string', value: 'URL', description: 'Gatehouse server URL (or GATEHOUSE_URL)' },
  {
    name: 'token',
    type: 'string',
    value: 'TOKEN',
    description: 'Access token or API key (or GATEHOUSE_TOKEN)',
  },
  { name: 'no-color', type: 'boolean', description: 'Never colour the output' },
  { name: 'help', short: 'h', type: 'boolean', description: 'Show help' },
];

export const EXIT = { ok: 0, error: 1, usage: 2, auth: 3, denied: 10 } as const;

export function usageError(message: string): CliError {
  return new CliError(message, { exitCode: EXIT.usage, code: 'GW_ERR_CLI_USAGE' });
}

interface Parsed {
  readonly args: string[];
  readonly flags: Record<string, string | number | boolean | string[]>;
}

/** Parses `--name value`, `--name=value`, `-h`, `--no-x` and `--` against the flag specs. */
export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[]): Parsed {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short !== undefined).map((s) => [s.short ?? '', s]));
  const args: string[] = [];
  const flags: Record<string, string | number | boolean | string[]> = {};
  for (let i = 0; i < argv.length; i += 1) {
    const token = argv[i] ?? '';
    if (token === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (!token.startsWith('-') || token === '-') {
      args.push(token);
      continue;
    }
    const long = token.startsWith('--');
    const [rawName = '', inline] = long ? token.slice(2).split(/=(.*)/s, 2) : [token.slice(1), undefined];
    const spec = long ? byName.get(rawName) : byShort.get(rawName);
    if (spec === undefined) throw usageError(`Unknown flag "${token}"`);
    if (spec.type === 'boolean') {
      if (inline !== undefined) throw usageError(`Flag "--${spec.name}" takes no value`);
      flags[spec.name] = true;
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw usageError(`Flag "--${spec.name}" needs a value`);
    if (spec.type === 'number') {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n))
        throw usageError(`Flag "--${spec.name}" needs a number, got "${value}"`);
      flags[spec.name] = n;
    } else if (spec.type === 'list') {
      const list = flags[spec.name];
      flags[spec.name] = [...(Array.isArray(list) ? list : []), value];
    } else {
      flags[spec.name] = value;
    }
  }
  return { args, flags };
}

export interface CliIo {
  readonly env: Environment;
  readonly stdout: Writable & { isTTY?: boolean };
  readonly stderr: Writable & { isTTY?: boolean; columns?: number };
  readonly stdin: Readable;
  readonly signal?: AbortSignal;
}

function findCommand(
  argv: readonly string[],
  commands: readonly CommandSpec[],
): { spec: CommandSpec; rest: string[] } | undefined {
  let best: { spec: CommandSpec; rest: string[] } | undefined;
  for (const spec of commands) {
    const words = spec.name.split(' ');
    if (
      words.every((w, i) => argv[i] === w) &&
      (best === undefined || words.length > best.spec.name.split(' ').length)
    ) {
      best = { spec, rest: argv.slice(words.length) };
    }
  }
  return best;
}

/**
 * The commands a group of words leads to (`kv` → `kv get`, `kv set`, …): the longest run of
 * leading words that some command names start with, or none.
 */
function findGroup(
  argv: readonly string[],
  commands: readonly CommandSpec[],
): { readonly group: string; readonly members: readonly CommandSpec[] } | undefined {
  const words: string[] = [];
  for (const a of argv) {
    if (a.startsWith('-')) break;
    words.push(a);
  }
  for (let n = words.length; n > 0; n -= 1) {
    const group = words.slice(0, n).join(' ');
    const members = commands.filter((c) => c.name.startsWith(`${group} `));
    if (members.length > 0) return { group, members };
  }
  return undefined;
}

function helpText(commands: readonly CommandSpec[], spec?: CommandSpec, group?: string): string {
  if (spec !== undefined) {
    const flags = [...(spec.flags ?? []), ...GLOBAL_FLAGS];
    const lines = [
      `Usage: gatehouse ${spec.name}${spec.usage === undefined ? '' : ` ${spec.usage}`} [flags]`,
      '',
      spec.summary,
      '',
      'Flags:',
    ];
    for (const f of flags) {
      const name = `--${f.name}${f.value === undefined ? '' : ` ${f.value}`}${f.short === undefined ? '' : `, -${f.short}`}`;
      lines.push(`  ${name.padEnd(28)} ${f.description}${f.required === true ? ' (required)' : ''}`);
    }
    return `${lines.join('\n')}\n`;
  }
  const width = Math.max(...commands.map((c) => c.name.length));
  const command = `${group === undefined ? '' : `${group} `}<command>`;
  const lines = [`Usage: gatehouse ${command} [flags]`, '', 'Commands:'];
  for (const c of [...commands].sort((a, b) => a.name.localeCompare(b.name)))
    lines.push(`  ${c.name.padEnd(width)}  ${c.summary}`);
  lines.push('', `Run "gatehouse ${command} --help" for the flags of a command.`);
  return `${lines.join('\n')}\n`;
}

/**
 * Keeps a write error on stdout or stderr from crashing the process with a stack trace. A
 * reader that went away (`gatehouse … | head -1`) is no failure: like standard tools, the CLI
 * then writes nothing more there, quietly, and the command keeps its own exit code (10 for a
 * denied package). Any other write error is told once on stderr. The listener stays for the
 * life of the stream: the error of the last write arrives after the command returned.
 */
function guardWrites(io: CliIo): void {
  for (const stream of [io.stdout, io.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE' || stream === io.stderr || io.stderr.destroyed) return;
      io.stderr.write(`error: cannot write the output: ${error.message}\n`);
    });
  }
}

/**
 * An error's line for people: the message, then what support needs to find the server's log
 * entry (`(GW_ERR_…, errorId …)`) when the server answered with them. The CLI's own failures
 * (usage, an unreachable server) say all in their message.
 */
function forPeople(error: CliError): string {
  if (error.errorId === undefined && error.status === undefined) return error.message;
  const suffix = [error.code, error.errorId === undefined ? undefined : `errorId ${error.errorId}`]
    .filter((part) => part !== undefined)
    .join(', ');
  return suffix === '' ? error.message : `${error.message} (${suffix})`;
}

/** Runs the command line; returns the process exit code. Never throws. */
export async function runCli(
  argv: readonly string[],
  commands: readonly CommandSpec[],
  io: CliIo,
): Promise<number> {
  guardWrites(io);
  const wantsJson = argv.includes('--json');
  const color = io.stdout.isTTY === true && io.env['NO_COLOR'] === undefined && !argv.includes('--no-color');
  const out = createOutput({ stdout: io.stdout, stderr: io.stderr, json: wantsJson, color });
  try {
    if (argv.length === 0 || argv[0] === 'help' || argv[0] === '--help' || argv[0] === '-h') {
      const topic = argv[0] === 'help' ? argv.slice(1) : [];
      const target = topic.length > 0 ? findCommand(topic, commands)?.spec : undefined;
      const group = target === undefined && topic.length > 0 ? findGroup(topic, commands) : undefined;
      io.stdout.write(
        group === undefined ? helpText(commands, target) : helpText(group.members, undefined, group.group),
      );
      return EXIT.ok;
    }
    const found = findCommand(argv, commands);
    if (found === undefined) {
      // A group's name alone (`gatehouse kv`) or with --help lists the group's commands.
      const group = findGroup(argv, commands);
      const named = argv.filter((a) => !a.startsWith('-'));
      if (group !== undefined && group.group === named.join(' ')) {
        io.stdout.write(helpText(group.members, undefined, group.group));
        return argv.includes('--help') || argv.includes('-h') ? EXIT.ok : EXIT.usage;
      }
      throw usageError(
        `Unknown command "${named.slice(0, 3).join(' ')}"; run "gatehouse ${group?.group ?? 'help'}${group === undefined ? '' : ' --help'}"`,
      );
    }
    const { spec, rest } = found;
    const parsed = parseArgs(rest, [...(spec.flags ?? []), ...GLOBAL_FLAGS]);
    if (parsed.flags['help'] === true) {
      io.stdout.write(helpText(commands, spec));
      return EXIT.ok;
    }
    for (const f of spec.flags ?? []) {
      if (f.required === true && parsed.flags[f.name] === undefined)
        throw usageError(`Missing required flag "--${f.name}"`);
    }
    const { min = 0, max = Number.POSITIVE_INFINITY } = spec.args ?? {};
    if (parsed.args.length < min)
      throw usageError(`"gatehouse ${spec.name}" needs ${spec.usage ?? `${min} argument(s)`}`);
    if (parsed.args.length > max)
      throw usageError(`Unexpected argument "${parsed.args[max]}" for "gatehouse ${spec.name}"`);
    let client: ApiClient | undefined;
    const ctx: CommandContext = {
      args: parsed.args,
      flags: parsed.flags,
      out,
      env: io.env,
      stdin: io.stdin,
      signal: io.signal ?? new AbortController().signal,
      flag: (name) => {
        const v = parsed.flags[name];
        return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;
      },
      async client() {
        if (client !== undefined) return client;
        const saved = await readSavedLogin(io.env);
        const server =
          ctx.flag('server') ?? io.env['GATEHOUSE_URL'] ?? saved?.server ?? 'http://127.0.0.1:7070';
        const token = ctx.flag('token') ?? io.env['GATEHOUSE_TOKEN'];
        client = createApiClient({
          server,
          env: io.env,
          ...(token === undefined ? {} : { token }),
          ...(saved !== undefined && sameServer(saved.server, server) ? { saved } : {}),
        });
        return client;
      },
    };
    return (await spec.run(ctx)) ?? EXIT.ok;
  } catch (error) {
    if (error instanceof CliError) {
      if (wantsJson) {
        io.stdout.write(
          `${JSON.stringify({ error: { message: error.message, code: error.code, errorId: error.errorId } }, null, 2)}\n`,
        );
      }
      out.error(forPeople(error));
      return error.exitCode;
    }
    // Any other failure (a database that does not answer, a file that cannot be read): --json
    // still gets its JSON error object, and a Gatehouse error its code.
    const message = error instanceof Error ? error.message : String(error);
    const code = isGatewayError(error) ? error.code : undefined;
    if (wantsJson) io.stdout.write(`${JSON.stringify({ error: { message, code } }, null, 2)}\n`);
    out.error(code === undefined ? message : `${message} (${code})`);
    return EXIT.error;
  }
}
