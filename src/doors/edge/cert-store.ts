/**
 * TLS certificates of L7 routes, loaded from PEM files into SecureContexts and reloaded when the
 * files change (their folders are watched, so saves by rename and Kubernetes Secret updates
 * count). A reload that fails keeps the last good context and is logged.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import { watchFiles } from '#core/config';
import type { Logger } from '#core/log';

/** Contexts by certificate/key file pair. */
export interface CertificateStore {
  /** The current context for a pair; loads it on first use (throws when the files are unusable). */
  context(certFile: string, keyFile: string): SecureContext;
  /** The PEM bytes behind the current context of a pair. */
  material(certFile: string, keyFile: string): CertificateMaterial;
  /** Re-reads every loaded pair now. */
  reloadAll(): void;
  /** How many times contexts were (re)loaded; tests and metrics read it. */
  readonly generation: number;
  close(): void;
}

/** PEM bytes of one pair. */
export interface CertificateMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
}

interface Entry {
  context: SecureContext;
  material: CertificateMaterial;
  readonly certFile: string;
  readonly keyFile: string;
}

function load(certFile: string, keyFile: string): { context: SecureContext; material: CertificateMaterial } {
  const material = { cert: readFileSync(certFile), key: readFileSync(keyFile) };
  return { context: createSecureContext(material), material };
}

/** Creates a store; `debounceMs` coalesces the bursts of events one file write causes. */
export function createCertificateStore(log: Logger, debounceMs = 50): CertificateStore {
  const entries = new Map<string, Entry>();
  let generation = 0;

  const reload = (entry: Entry) => {
    try {
      const loaded = load(entry.certFile, entry.keyFile);
      entry.context = loaded.context;
      entry.material = loaded.material;
      generation++;
      log.info('Reloaded certificate', { certFile: entry.certFile });
    } catch (error) {
      log.warn('Certificate reload failed; keeping the previous one', { certFile: entry.certFile, error });
    }
  };
  // The folders are watched: saves by rename and Kubernetes Secret updates (a `..data` link swap)
  // replace the files without an event on their names.
  const watching = watchFiles(
    () => {
      for (const entry of entries.values()) reload(entry);
    },
    {
      debounceMs,
      onError: (folder, error) =>
        log.warn('Cannot watch certificate folder; reload on change is off for it', { folder, error }),
    },
  );

  const entryOf = (certFile: string, keyFile: string): Entry => {
    const key = `${certFile}\u0000${keyFile}`;
    let entry = entries.get(key);
    if (entry === undefined) {
      entry = { ...load(certFile, keyFile), certFile, keyFile };
      entries.set(key, entry);
      generation++;
      watching.add(certFile);
      watching.add(keyFile);
    }
    return entry;
  };

  return {
    context: (certFile, keyFile) => entryOf(certFile, keyFile).context,
    material: (certFile, keyFile) => entryOf(certFile, keyFile).material,
    reloadAll() {
      for (const entry of entries.values()) reload(entry);
    },
    get generation() {
      return generation;
    },
    close() {
      watching.close();
    },
  };
}
