import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { request } from 'undici';
import { EMPTY_SHA256, signV4 } from './sigv4.ts';

/** A local S3-compatible server for tests (moto's standalone server), loopback only. */
export interface LocalS3 {
  readonly endpoint: string;
  createBucket(name: string): Promise<void>;
  close(): Promise<void>;
}

/** Test credentials; moto accepts any pair but still receives SigV4-signed requests. */
export const LOCAL_S3_CREDENTIALS = {
  accessKeyId: 'gatehouse-test',
  secretAccessKey: 'gatehouse-test-secret',
};

/** True when `moto_server` (Python moto, an S3-compatible server) is on PATH. */
export function hasLocalS3(): boolean {
  return spawnSync('moto_server', ['--help'], { stdio: 'ignore' }).status === 0;
}

/** Starts `moto_server` on 127.0.0.1 with an ephemeral port and waits until it listens. */
export async function startLocalS3(): Promise<LocalS3> {
  const child: ChildProcess = spawn('moto_server', ['-H', '127.0.0.1', '-p', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const endpoint = await new Promise<string>((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString();
      const match = /Running on (http:\/\/127\.0\.0\.1:\d+)/.exec(text);
      if (match?.[1] !== undefined) resolve(match[1]);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`moto_server exited with ${code}: ${text}`)));
  });
  child.stdout?.resume();
  child.stderr?.resume();
  return {
    endpoint,
    async createBucket(name) {
      const url = new URL(`/${name}`, endpoint);
      const headers = signV4(
        { method: 'PUT', url, headers: {}, payloadHash: EMPTY_SHA256 },
        { ...LOCAL_S3_CREDENTIALS, region: 'us-east-1', service: 's3' },
      );
      delete headers['host'];
      const res = await request(url, { method: 'PUT', headers });
      await res.body.text();
      if (res.statusCode !== 200) throw new Error(`Cannot create bucket "${name}": status ${res.statusCode}`);
    },
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
