import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContext, type SecureContextOptions, type Server } from 'node:tls';
import { serialRuns, watchFiles } from '#core/config';
import { isGatewayError } from '#core/errors';
import type { Logger } from '#core/log';
import { checkKeyPair, invalid, splitPemCertificates } from './pem.ts';

export type TlsMinVersion = 'TLSv1.2' | 'TLSv1.3';

export interface TlsContextProviderOptions {
  readonly certFile: string;
  readonly keyFile: string;
  /** CA bundle that client certificates must chain to (mTLS). */
  readonly caFile?: string;
  readonly minVersion: TlsMinVersion;
  /** OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are fixed by the protocol). */
  readonly ciphers?: string;
  readonly log: Logger;
  /** Watch the files and reload on change (default true). */
  readonly watch?: boolean;
  /** Coalesces the burst of events an editor or `cp` produces (default 100 ms). */
  readonly debounceMs?: number;
}

/** What one reload attempt did. */
export type TlsReloadOutcome =
  | { readonly ok: true; readonly fingerprint256: string; readonly validTo: string }
  | { readonly ok: false; readonly error: Error };

/** The current TLS material of a listener, swapped atomically when its files change. */
export interface TlsContextProvider extends AsyncDisposable {
  /** The context new handshakes use. */
  current(): SecureContext;
  /** Options for `tls.createServer`/`http2.createSecureServer` (version floor, SNI callback, initial material). */
  serverOptions(): SecureContextOptions & {
    SNICallback: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void;
  };
  /** Makes `server` use every future swap for handshakes without SNI too. Returns a detach function. */
  attach(server: Pick<Server, 'setSecureContext'>): () => void;
  /** Re-reads the files now; on invalid files keeps the current context. */
  reload(): Promise<TlsReloadOutcome>;
  /** Called after every reload attempt. */
  onReload(listener: (outcome: TlsReloadOutcome) => void): () => void;
  close(): void;
}

interface Material {
  readonly options: SecureContextOptions;
  readonly context: SecureContext;
  readonly fingerprint256: string;
  readonly validTo: string;
}

async function readMaterialFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw invalid(file, `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`, error);
  }
}

async function loadMaterial(options: TlsContextProviderOptions): Promise<Material> {
  const [cert, key, ca] = await Promise.all([
    readMaterialFile(options.certFile),
    readMaterialFile(options.keyFile),
    options.caFile === undefined ? undefined : readMaterialFile(options.caFile),
  ]);
  const leaf = checkKeyPair(cert, key, { cert: options.certFile, key: options.keyFile });
  if (ca !== undefined && options.caFile !== undefined && splitPemCertificates(ca).length === 0) {
    throw invalid(options.caFile, 'holds no PEM certificate');
  }
  const contextOptions: SecureContextOptions = {
    cert,
    key,
    minVersion: options.minVersion,
    ...(ca === undefined ? {} : { ca }),
    ...(options.ciphers === undefined ? {} : { ciphers: options.ciphers }),
  };
  let context: SecureContext;
  try {
    context = createSecureContext(contextOptions);
  } catch (error) {
    throw invalid(options.certFile, 'cannot be used for TLS', error);
  }
  return { options: contextOptions, context, fingerprint256: leaf.fingerprint256, validTo: leaf.validTo };
}

/**
 * Loads a certificate and key (and optional client CA) and keeps them current: the files are
 * watched and a valid new pair replaces the context atomically for new handshakes, while open
 * connections keep the context they were established with. Invalid new files are logged and
 * the last good context stays in use. Throws GW_ERR_TLS_INVALID when the first load fails.
 */
export async function createTlsContextProvider(
  options: TlsContextProviderOptions,
): Promise<TlsContextProvider> {
  let material = await loadMaterial(options);
  const servers = new Set<Pick<Server, 'setSecureContext'>>();
  const listeners = new Set<(outcome: TlsReloadOutcome) => void>();

  const emit = (outcome: TlsReloadOutcome) => {
    for (const listener of listeners) listener(outcome);
  };
  const doReload = async (): Promise<TlsReloadOutcome> => {
    let outcome: TlsReloadOutcome;
    try {
      const next = await loadMaterial(options);
      const changed = next.fingerprint256 !== material.fingerprint256;
      material = next;
      for (const server of servers) server.setSecureContext(next.options);
      if (changed)
        options.log.info('TLS certificate reloaded', {
          file: options.certFile,
          fingerprint256: next.fingerprint256,
        });
      outcome = { ok: true, fingerprint256: next.fingerprint256, validTo: next.validTo };
    } catch (error) {
      const reason = isGatewayError(error) ? error.message : String(error);
      options.log.error('TLS reload failed; keeping the current certificate', {
        file: options.certFile,
        reason,
      });
      outcome = { ok: false, error: error as Error };
    }
    emit(outcome);
    return outcome;
  };
  // A call during a reload gets a read of its own after it: the running one may have read the
  // files before the caller replaced them.
  const reload = serialRuns<void, TlsReloadOutcome>(doReload);

  // Watches the folders: tools replace certificates by rename, and Kubernetes swaps the `..data`
  // link of a mounted Secret, which a watch on the files would never see.
  const watching =
    options.watch === false
      ? undefined
      : watchFiles(() => void reload(), {
          debounceMs: options.debounceMs ?? 100,
          onError: (directory, error) => options.log.warn('TLS file watch failed', { directory, error }),
        });
  for (const file of [
    options.certFile,
    options.keyFile,
    ...(options.caFile === undefined ? [] : [options.caFile]),
  ]) {
    watching?.add(file);
  }

  const close = () => {
    watching?.close();
    servers.clear();
  };

  return {
    current: () => material.context,
    serverOptions: () => ({
      ...material.options,
      SNICallback: (_servername, cb) => cb(null, material.context),
    }),
    attach(server) {
      servers.add(server);
      return () => servers.delete(server);
    },
    reload,
    onReload(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close,
    async [Symbol.asyncDispose]() {
      close();
    },
  };
}
