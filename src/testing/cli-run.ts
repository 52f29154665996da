import { PassThrough } from 'node:stream';
import { type CommandSpec, runCli } from '../cli/framework.ts';

/** What one CLI run printed and returned. */
export interface CliRun {
  readonly code: number;
  /** Stdout as text, and as the bytes written (a raw kv value). */
  readonly out: string;
  readonly bytes: Buffer;
  readonly err: string;
}

/**
 * Runs the CLI in-process on `commands` with `argv`, capturing stdout and stderr; with `tty`,
 * stdout claims to be a terminal.
 */
export async function runCliCaptured(
  argv: readonly string[],
  commands: readonly CommandSpec[],
  env: Readonly<Record<string, string>> = {},
  options: { readonly tty?: boolean } = {},
): Promise<CliRun> {
  const stdout = Object.assign(new PassThrough(), { isTTY: options.tty === true });
  const stderr = new PassThrough();
  const chunks: Buffer[] = [];
  let err = '';
  stdout.on('data', (c: Buffer) => chunks.push(c));
  stderr.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const code = await runCli([...argv], commands, {
    env: { ...env },
    stdout,
    stderr,
    stdin: new PassThrough(),
  });
  const bytes = Buffer.concat(chunks);
  return { code, out: bytes.toString(), bytes, err };
}
