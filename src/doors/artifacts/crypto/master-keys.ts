import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ArtifactsConfig } from '../config.ts';
import { createKeyring, type Keyring, type MasterKey, parseMasterKey } from './keyring.ts';

/**
 * Loads the master keys from configuration (inline secret or a secret file). With none
 * configured, a `default` key is generated once in the data folder (mode 0600): the embedded
 * development setup; production configures keys from a secret store.
 */
export async function loadKeyring(
  config: ArtifactsConfig['encryption'],
  generatedKeyFile: string,
): Promise<Keyring> {
  const keys: MasterKey[] = [];
  for (const k of config.keys) {
    if ((k.secret === undefined) === (k.file === undefined)) {
      throw new TypeError(`artifacts.encryption.keys "${k.id}" needs exactly one of "secret" or "file"`);
    }
    keys.push(parseMasterKey(k.id, k.secret ?? (await readFile(k.file ?? ''))));
  }
  if (keys.length === 0) {
    let material: Buffer;
    try {
      material = await readFile(generatedKeyFile);
    } catch {
      material = Buffer.from(randomBytes(32).toString('base64'));
      await mkdir(dirname(generatedKeyFile), { recursive: true });
      await writeFile(generatedKeyFile, material, { mode: 0o600, flag: 'wx' }).catch(async () => {
        material = await readFile(generatedKeyFile);
      });
    }
    keys.push(parseMasterKey('default', material));
  }
  return createKeyring(keys, config.keys.length === 0 ? 'default' : config.activeKey);
}
