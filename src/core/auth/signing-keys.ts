import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint, type JWK } from 'jose';
import type { Clock } from '#core/clock';
import type { Logger } from '#core/log';
import { writeSecretFile } from './files.ts';
import type { PublicKeyDirectory } from './key-directory.ts';

/** One Ed25519 signing key with its RFC 7638 thumbprint as `kid`. */
export interface SigningKey {
  readonly kid: string;
  readonly createdAt: number;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly publicJwk: JWK;
}

/** The signing keys in `<dataDir>/keys/`: the newest signs, older ones verify until their tokens expire. */
export interface KeyRing {
  current(): SigningKey;
  get(kid: string): SigningKey | undefined;
  /** The public JWK set served at `/.well-known/jwks.json`. */
  jwks(): { readonly keys: readonly JWK[] };
  /** Generates a new current key; the previous one keeps verifying for `retainFor`. */
  rotate(): Promise<SigningKey>;
  /** The current key, rotated first when it is older than `rotateAfter` (long-running servers). */
  signingKey(): Promise<SigningKey>;
}

interface KeyFile {
  readonly kid: string;
  readonly createdAt: number;
  readonly jwk: JWK;
}

async function toSigningKey(file: KeyFile): Promise<SigningKey> {
  const privateKey = createPrivateKey({ key: file.jwk, format: 'jwk' });
  const publicKey = createPublicKey(privateKey);
  const pub = publicKey.export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint(pub, 'sha256');
  if (kid !== file.kid) throw new TypeError(`Signing key file "${file.kid}" does not match its thumbprint`);
  return {
    kid,
    createdAt: file.createdAt,
    privateKey,
    publicKey,
    publicJwk: Object.freeze({ ...pub, kid, alg: 'EdDSA', use: 'sig' }),
  };
}

async function generate(dir: string, now: number): Promise<SigningKey> {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' }) as JWK;
  const pub = createPublicKey(privateKey).export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint(pub, 'sha256');
  const file: KeyFile = { kid, createdAt: now, jwk };
  await writeSecretFile(join(dir, `${kid}.jwk.json`), `${JSON.stringify(file)}\n`);
  return toSigningKey(file);
}

async function loadAll(dir: string, log: Logger): Promise<SigningKey[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const keys: SigningKey[] = [];
  for (const name of names.filter((n) => n.endsWith('.jwk.json'))) {
    try {
      keys.push(await toSigningKey(JSON.parse(await readFile(join(dir, name), 'utf8')) as KeyFile));
    } catch (error) {
      // A damaged key file must not stop the server; tokens signed with it simply stop verifying.
      log.error('Ignoring an unreadable signing key file', { file: join(dir, name), error });
    }
  }
  return keys.toSorted((a, b) => a.createdAt - b.createdAt);
}

/**
 * Opens the key ring in `dir`, generating the first key, rotating when the current key is older
 * than `rotateAfter`, and deleting keys whose successor is older than `retainFor` (the access
 * token lifetime), so that no token they signed can still be valid.
 */
export async function openKeyRing(options: {
  readonly dir: string;
  readonly clock: Clock;
  readonly log: Logger;
  readonly rotateAfter: number;
  readonly retainFor: number;
  /** Shared public keys of all replicas; without it only this replica's keys verify. */
  readonly directory?: PublicKeyDirectory;
}): Promise<KeyRing> {
  const { dir, clock, log, directory } = options;
  let keys = await loadAll(dir, log);
  const prune = async () => {
    const now = clock.now();
    const keep: SigningKey[] = [];
    for (const [i, key] of keys.entries()) {
      const successor = keys[i + 1];
      if (successor !== undefined && now - successor.createdAt > options.retainFor) {
        await rm(join(dir, `${key.kid}.jwk.json`), { force: true });
        log.info('Deleted a retired signing key', { kid: key.kid });
      } else {
        keep.push(key);
      }
    }
    keys = keep;
  };
  const rotate = async () => {
    // Strictly increasing creation times keep the newest key current even within one millisecond.
    const key = await generate(dir, Math.max(clock.now(), (keys.at(-1)?.createdAt ?? 0) + 1));
    const previous = keys.at(-1);
    keys = [...keys, key];
    log.info('Generated a new token signing key', { kid: key.kid });
    await directory?.publish(key);
    if (previous !== undefined) await directory?.retire(previous.kid);
    await prune();
    return key;
  };
  let rotating: Promise<SigningKey> | undefined;
  const newest = keys.at(-1);
  if (newest === undefined || clock.now() - newest.createdAt >= options.rotateAfter) await rotate();
  else await prune();
  // Publishing is idempotent; it also covers keys created before the directory existed.
  const current = keys.at(-1);
  if (current !== undefined) await directory?.publish(current);
  return {
    current: () => keys.at(-1) as SigningKey,
    get: (kid) => keys.find((k) => k.kid === kid),
    jwks: () => ({ keys: keys.map((k) => k.publicJwk) }),
    rotate,
    async signingKey() {
      const key = keys.at(-1) as SigningKey;
      if (clock.now() - key.createdAt < options.rotateAfter) return key;
      // One rotation for every request that noticed the age at the same time.
      rotating ??= rotate().finally(() => {
        rotating = undefined;
      });
      return rotating;
    },
  };
}
