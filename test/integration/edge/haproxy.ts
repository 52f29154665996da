/**
 * Runs the Debian `haproxy` binary with a generated configuration for tests and benchmarks, and
 * waits (bounded) until its frontends accept connections.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface HaproxyProcess extends AsyncDisposable {
  readonly child: ChildProcess;
  readonly dir: string;
  stderr(): string;
}

/** A port that was free a moment ago on 127.0.0.1 (HAProxy needs numbers in its file). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = address !== null && typeof address === 'object' ? address.port : 0;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** Starts HAProxy with `config` (files it needs can be written into `dir` by `prepare`). */
export async function startHaproxy(
  config: (dir: string) => Promise<string> | string,
  ports: readonly number[],
  /** A command HAProxy runs under, e.g. `['taskset', '-c', '1']` in the benchmark. */
  wrapper: readonly string[] = [],
): Promise<HaproxyProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'edge-haproxy-'));
  const file = join(dir, 'haproxy.cfg');
  await writeFile(file, await config(dir));
  const argv: string[] = [...wrapper, 'haproxy', '-db', '-f', file];
  const child = spawn(argv[0] ?? 'haproxy', argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  for (const port of ports) {
    let up = false;
    for (let i = 0; i < 100 && !up && child.exitCode === null; i++) {
      up = await accepts(port);
      if (!up) await new Promise((r) => setTimeout(r, 50));
    }
    if (!up) throw new Error(`HAProxy did not listen on ${port} (exit ${String(child.exitCode)}): ${stderr}`);
  }
  return {
    child,
    dir,
    stderr: () => stderr,
    async [Symbol.asyncDispose]() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The `global`/`defaults` head shared by test configurations. */
export const HAPROXY_HEAD = [
  'global',
  '  log stderr local0 warning',
  '  maxconn 4000',
  'defaults',
  '  log global',
  '  timeout connect 2s',
  '  timeout client 30s',
  '  timeout server 30s',
  '',
].join('\n');
