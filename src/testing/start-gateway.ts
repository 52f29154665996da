import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processEnvironment } from '#core/config';

const MAIN = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'main.ts');
/**
 * The Node flags of `npm start` (package.json), so memory and speed measured by a test or
 * benchmark are those of the gateway as it is run (ADR 0100, 0101): `node <flags> src/main.ts
 * serve`. A relative `--import=./…` is made absolute, so a child started in another folder
 * preloads the same file.
 */
export function startFlags(): string[] {
  const root = resolve(dirname(MAIN), '..');
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  const flags = /^node((?: --[\w-]+(?:=\S+)?)*) src\/main\.ts serve$/.exec(pkg.scripts['start'] ?? '')?.[1];
  if (flags === undefined) throw new Error(`Unexpected start script "${pkg.scripts['start']}"`);
  return flags
    .split(' ')
    .filter((f) => f !== '')
    .map((f) => (f.startsWith('--import=./') ? `--import=${join(root, f.slice('--import='.length))}` : f));
}

/** Printed by `gatehouse serve` once it listens (src/cli/serve.ts). */
const LISTENING = /Gatehouse listening on (\S+)/;
const PASSWORD = /password: (\S+)/;

export interface GatewayProcess extends AsyncDisposable {
  readonly child: ChildProcess;
  readonly url: string;
  readonly home: string;
  /** The admin password printed on first start, if this start printed one. */
  readonly adminPassword: string | undefined;
  stdout(): string;
  stderr(): string;
  /** Sends a signal and resolves with the exit code (or signal name). */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
  /** Resolves when the process exits. */
  readonly exited: Promise<number | string>;
}

export interface StartProcessOptions {
  /** The data folder; a fresh temporary one when absent (removed on dispose). */
  readonly home?: string;
  readonly args?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** How long to wait for the listening line (default 60 s; the cold-start test asserts its own 20 s bound). */
  readonly timeoutMs?: number;
}

export interface ProcessResult {
  readonly code: number | string;
  readonly stdout: string;
  readonly stderr: string;
}

function spawnGateway(
  args: readonly string[],
  env: Readonly<Record<string, string>>,
  cwd: string,
): ChildProcess {
  const base: Record<string, string> = {};
  const parent = processEnvironment();
  for (const key of ['PATH', 'HOME', 'LANG', 'TZ', 'TMPDIR']) {
    const value = parent[key];
    if (value !== undefined) base[key] = value;
  }
  return spawn(process.execPath, [MAIN, ...args], {
    cwd,
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function exitOf(child: ChildProcess): Promise<number | string> {
  return new Promise((resolveExit) => {
    if (child.exitCode !== null) resolveExit(child.exitCode);
    else child.once('exit', (code, signal) => resolveExit(code ?? signal ?? 'unknown'));
  });
}

/** Runs a gateway command to completion (e.g. a `serve` that must fail) and collects its output. */
export async function runGatewayCommand(
  args: readonly string[],
  options: {
    readonly env?: Readonly<Record<string, string>>;
    readonly cwd?: string;
    readonly timeoutMs?: number;
  } = {},
): Promise<ProcessResult> {
  const child = spawnGateway(args, options.env ?? {}, options.cwd ?? tmpdir());
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
  const code = await exitOf(child);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/**
 * Starts the real `gatehouse serve` as a child process on 127.0.0.1:0 with its own data folder
 * and waits for the listening line. For cold-start, signal and crash (kill -9) tests.
 */
export async function startGatewayProcess(options: StartProcessOptions = {}): Promise<GatewayProcess> {
  const ownHome = options.home === undefined;
  const home = options.home ?? mkdtempSync(join(tmpdir(), 'gatehouse-home-'));
  const child = spawnGateway(
    ['serve', '--listen', '127.0.0.1:0', ...(options.args ?? [])],
    { GATEHOUSE_HOME: home, GATEHOUSE_LOG_LEVEL: 'warn', GATEHOUSE_KV_LISTEN: '127.0.0.1:0', ...options.env },
    home,
  );
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const exited = exitOf(child);
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`Gateway did not listen within ${options.timeoutMs ?? 60_000} ms:\n${stdout}\n${stderr}`),
      );
    }, options.timeoutMs ?? 60_000);
    child.stdout?.on('data', (c: Buffer) => {
      stdout += c.toString();
      const match = LISTENING.exec(stdout);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolveUrl(match[1]);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`Gateway exited with ${code} before listening:\n${stdout}\n${stderr}`));
    });
  });
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  return {
    child,
    url,
    home,
    adminPassword: PASSWORD.exec(stdout)?.[1],
    stdout: () => stdout,
    stderr: () => stderr,
    stop,
    exited,
    async [Symbol.asyncDispose]() {
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await stop('SIGTERM');
      clearTimeout(timer);
      if (ownHome) rmSync(home, { recursive: true, force: true });
    },
  };
}
