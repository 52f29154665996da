import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFlags } from '#testing/start-gateway';

const HERE = dirname(fileURLToPath(import.meta.url));
const SCRIPT = join(HERE, 'child-door.ts');

/** A child process running the artifacts door. */
export interface ChildDoor {
  readonly child: ChildProcess;
  readonly url: string;
  /** Peak resident set size of the child so far, in bytes (Linux VmHWM). */
  peakRss(): number;
  kill(signal: NodeJS.Signals): Promise<void>;
}

/** Spawns the door on `home` and waits for its listening line (bounded by 20 s). */
export async function spawnDoor(home: string, raw: Record<string, unknown> = {}): Promise<ChildDoor> {
  const child = spawn(process.execPath, [...startFlags(), SCRIPT, home, JSON.stringify(raw)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`child did not start: ${err}`)), 20_000);
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening (\S+)/.exec(out);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child exited ${code}: ${err}`));
    });
  });
  return {
    child,
    url,
    peakRss() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    },
    async kill(signal) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill(signal);
      await exited;
    },
  };
}
