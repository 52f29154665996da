import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { GatewayError } from '#core/errors';

/** One master key (key-encryption key) with its id. */
export interface MasterKey {
  readonly id: string;
  /** 32 bytes. */
  readonly key: Buffer;
}

/** A data key wrapped by a master key, as stored in the metadata. */
export interface WrappedKey {
  readonly keyId: string;
  /** iv(12) ‖ ciphertext(32) ‖ tag(16). */
  readonly wrapped: Buffer;
}

/**
 * Envelope encryption: each blob has its own random 256-bit data key, stored only wrapped by a
 * master key. Rotation rewraps the small data keys with the active master key and never touches
 * the blobs; destroying a wrapped key makes its blob unreadable (crypto-shredding).
 */
export interface Keyring {
  readonly activeKeyId: string;
  readonly keyIds: readonly string[];
  /** A fresh data key and its wrapped form under the active master key. */
  newDataKey(): { readonly key: Buffer; readonly wrapped: WrappedKey };
  unwrap(wrapped: WrappedKey): Buffer;
  /** Rewraps under the active master key; returns the input when it already uses it. */
  rewrap(wrapped: WrappedKey): WrappedKey;
}

const WRAP_AAD = 'gatehouse/artifacts/data-key/v1:';

function keyUnavailable(message: string, keyId: string, cause?: unknown): GatewayError {
  return new GatewayError('GW_ERR_ARTIFACTS_KEY_UNAVAILABLE', { message, details: { keyId }, cause });
}

/** Builds a keyring; throws RangeError on a bad key length, duplicate id or unknown active id. */
export function createKeyring(keys: readonly MasterKey[], activeKeyId: string): Keyring {
  const byId = new Map<string, Buffer>();
  for (const { id, key } of keys) {
    if (key.length !== 32) throw new RangeError(`Master key "${id}" must be 32 bytes, got ${key.length}`);
    if (byId.has(id)) throw new RangeError(`Master key id "${id}" is configured twice`);
    byId.set(id, key);
  }
  const activeKey = byId.get(activeKeyId);
  if (activeKey === undefined) throw new RangeError(`Active master key "${activeKeyId}" is not configured`);

  const wrapWith = (keyId: string, kek: Buffer, dataKey: Buffer): WrappedKey => {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', kek, iv);
    // The key id is bound into the tag so a wrapped key cannot be relabelled to another master key.
    cipher.setAAD(Buffer.from(WRAP_AAD + keyId));
    const body = Buffer.concat([cipher.update(dataKey), cipher.final()]);
    return { keyId, wrapped: Buffer.concat([iv, body, cipher.getAuthTag()]) };
  };

  const unwrap = ({ keyId, wrapped }: WrappedKey): Buffer => {
    const kek = byId.get(keyId);
    if (kek === undefined) throw keyUnavailable(`Master key "${keyId}" is not configured`, keyId);
    if (wrapped.length !== 60) throw keyUnavailable(`Wrapped data key under "${keyId}" is malformed`, keyId);
    const decipher = createDecipheriv('aes-256-gcm', kek, wrapped.subarray(0, 12));
    decipher.setAAD(Buffer.from(WRAP_AAD + keyId));
    decipher.setAuthTag(wrapped.subarray(44));
    try {
      return Buffer.concat([decipher.update(wrapped.subarray(12, 44)), decipher.final()]);
    } catch (cause) {
      throw keyUnavailable(`Wrapped data key under "${keyId}" failed authentication`, keyId, cause);
    }
  };

  return {
    activeKeyId,
    keyIds: [...byId.keys()],
    newDataKey() {
      const key = randomBytes(32);
      return { key, wrapped: wrapWith(activeKeyId, activeKey, key) };
    },
    unwrap,
    rewrap(wrapped) {
      if (wrapped.keyId === activeKeyId) return wrapped;
      return wrapWith(activeKeyId, activeKey, unwrap(wrapped));
    },
  };
}

/** Parses key material: 32 raw bytes, or 32 bytes in base64 or hex text (a secret file or config value). */
export function parseMasterKey(id: string, material: Buffer | string): MasterKey {
  const raw = typeof material === 'string' ? Buffer.from(material, 'utf8') : material;
  if (raw.length === 32) return { id, key: Buffer.from(raw) };
  const text = raw.toString('utf8').trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return { id, key: Buffer.from(text, 'hex') };
  const decoded = Buffer.from(text, 'base64');
  if (decoded.length === 32 && /^[A-Za-z0-9+/=_-]+$/.test(text)) return { id, key: decoded };
  throw new RangeError(`Master key "${id}" must be 32 bytes, as raw bytes, 64 hex digits or base64`);
}
