import type { Credentials } from '#core/auth';
import type { Principal } from '#core/rbac';

export interface PrincipalCacheOptions {
  /** How long a successful authentication is reused; 0 disables the cache. */
  readonly ttlMs: number;
  readonly maxEntries: number;
  readonly now: () => number;
}

/**
 * Reuses a successful authentication of the same credentials from the same address for a short
 * time, so that a client sending thousands of calls per second is not re-verified (signature,
 * key set, role bindings) on each. The bound on reuse is the revocation delay this accepts; an
 * entry never outlives the credential's own expiry, and failures are never cached.
 */
export function createPrincipalCache(options: PrincipalCacheOptions) {
  const entries = new Map<string, { readonly principal: Principal; readonly until: number }>();
  const pending = new Map<string, Promise<Principal>>();
  const keyOf = (c: Credentials) =>
    `${c.clientIp ?? ''}\n${c.bearer ?? ''}\n${c.apiKey ?? ''}\n${c.certificate?.fingerprint256 ?? ''}`;
  return {
    get(credentials: Credentials): Principal | undefined {
      if (options.ttlMs <= 0) return undefined;
      const key = keyOf(credentials);
      const hit = entries.get(key);
      if (hit === undefined) return undefined;
      if (hit.until <= options.now()) {
        entries.delete(key);
        return undefined;
      }
      return hit.principal;
    },
    set(credentials: Credentials, principal: Principal): void {
      if (options.ttlMs <= 0) return;
      const until = Math.min(options.now() + options.ttlMs, principal.expiresAt ?? Number.POSITIVE_INFINITY);
      if (until <= options.now()) return;
      // Insertion order is age order: dropping the first entry drops the oldest.
      if (entries.size >= options.maxEntries) {
        const oldest = entries.keys().next().value;
        if (oldest !== undefined) entries.delete(oldest);
      }
      entries.set(keyOf(credentials), { principal, until });
    },
    /**
     * The cached principal, or the one `authenticate` resolves to. Concurrent misses for the
     * same credentials share one authentication: when an entry expires under load, one
     * signature check runs instead of one per call in flight. Failures are shared only by the
     * calls that waited for them, never cached. With a zero TTL every call authenticates.
     */
    load(credentials: Credentials, authenticate: () => Promise<Principal>): Promise<Principal> {
      if (options.ttlMs <= 0) return authenticate();
      const hit = this.get(credentials);
      if (hit !== undefined) return Promise.resolve(hit);
      const key = keyOf(credentials);
      const running = pending.get(key);
      if (running !== undefined) return running;
      const loading = authenticate()
        .then((principal) => {
          this.set(credentials, principal);
          return principal;
        })
        .finally(() => pending.delete(key));
      pending.set(key, loading);
      return loading;
    },
    size: () => entries.size,
  };
}

export type PrincipalCache = ReturnType<typeof createPrincipalCache>;
