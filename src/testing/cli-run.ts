import { PassThrough } from 'node:stream';
import { type CommandSpec, runCli } from '../cli/framework.ts';

/** What one CLI run printed and returned. */
export interface CliRun {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/** Runs the CLI in-process on `commands` with `argv`, capturing stdout and stderr. */
export async function runCliCaptured(
  argv: readonly string[],
  commands: readonly CommandSpec[],
  env: Readonly<Record<string, string>> = {},
): Promise<CliRun> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  stderr.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const code = await runCli([...argv], commands, {
    env: { ...env },
    stdout,
    stderr,
    stdin: new PassThrough(),
  });
  return { code, out, err };
}
