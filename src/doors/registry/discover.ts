import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/**
 * Asks the local npm client which registry it uses (`npm config get registry`), once at start.
 * This is configuration discovery: the default npm uplink is whatever the machine's npm is
 * configured for, never a host name written in this repository.
 */
export async function discoverNpmRegistry(timeoutMs = 15_000): Promise<string> {
  let stdout: string;
  try {
    ({ stdout } = await promisify(execFile)('npm', ['config', 'get', 'registry'], { timeout: timeoutMs }));
  } catch (cause) {
    throw new TypeError(
      'No npm uplink is configured (registry.npm.uplinks) and "npm config get registry" failed; install npm or configure an uplink',
      { cause },
    );
  }
  const url = stdout.trim().split('\n').pop()?.trim() ?? '';
  if (!/^https?:\/\/\S+$/.test(url)) {
    throw new TypeError(
      `"npm config get registry" answered "${url.slice(0, 200)}", which is not an http(s) URL`,
    );
  }
  return url;
}
