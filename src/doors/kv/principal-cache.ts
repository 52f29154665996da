import type { Credentials } from '#core/auth';
import type { Principal } from '#core/rbac';

export interface PrincipalCacheOptions {
  /** How long a successful authentication is reused; 0 disables the cache. */
  readonly ttlMs: number;
  readonly maxEntries: number;
  readonly now: () => number;
}

interface Entry {
  readonly principal: Principal;
  readonly until: number;
}

/** Where a call's credentials came from: its connection and the raw header values it sent. */
export interface Via {
  /** One object per connection (the transport's peer), so address and certificate are fixed. */
  readonly connection: object;
  readonly authorization: string;
  readonly apiKey: string;
}

interface LastHit {
  readonly authorization: string;
  readonly apiKey: string;
  readonly key: string;
  readonly entry: Entry;
}

/**
 * Reuses a successful authentication of the same credentials from the same address for a short
 * time, so that a client sending thousands of calls per second is not re-verified (signature,
 * key set, role bindings) on each. The bound on reuse is the revocation delay this accepts; an
 * entry never outlives the credential's own expiry, and failures are never cached.
 */
export function createPrincipalCache(options: PrincipalCacheOptions) {
  const entries = new Map<string, Entry>();
  const pending = new Map<string, Promise<Principal>>();
  const lastHit = new WeakMap<object, LastHit>();
  const keyOf = (c: Credentials) =>
    `${c.clientIp ?? ''}\n${c.bearer ?? ''}\n${c.apiKey ?? ''}\n${c.certificate?.fingerprint256 ?? ''}`;
  const remember = (via: Via | undefined, key: string) => {
    const entry = entries.get(key);
    if (via !== undefined && entry !== undefined) {
      lastHit.set(via.connection, { authorization: via.authorization, apiKey: via.apiKey, key, entry });
    }
  };
  return {
    /**
     * The principal of the connection's last hit when this call sent the same header values,
     * and that entry is still the cached, unexpired one; undefined otherwise (then `get`). A
     * connection keeps its address and client certificate, so equal header values mean equal
     * credentials: a hit skips parsing them and building and hashing the cache key.
     */
    recent(connection: object, authorization: string, apiKey: string): Principal | undefined {
      const last = lastHit.get(connection);
      if (last === undefined || last.authorization !== authorization || last.apiKey !== apiKey) {
        return undefined;
      }
      // Expired, evicted or replaced entries are answered by `get` (which drops expired ones).
      if (last.entry.until <= options.now() || entries.get(last.key) !== last.entry) return undefined;
      return last.entry.principal;
    },
    /** The cached principal of `credentials`; with `via`, remembered for `recent`. */
    get(credentials: Credentials, via?: Via): Principal | undefined {
      if (options.ttlMs <= 0) return undefined;
      const key = keyOf(credentials);
      const hit = entries.get(key);
      if (hit === undefined) return undefined;
      if (hit.until <= options.now()) {
        entries.delete(key);
        return undefined;
      }
      remember(via, key);
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
    load(credentials: Credentials, authenticate: () => Promise<Principal>, via?: Via): Promise<Principal> {
      if (options.ttlMs <= 0) return authenticate();
      const hit = this.get(credentials, via);
      if (hit !== undefined) return Promise.resolve(hit);
      const key = keyOf(credentials);
      const running = pending.get(key);
      const loading =
        running ??
        authenticate()
          .then((principal) => {
            this.set(credentials, principal);
            return principal;
          })
          .finally(() => pending.delete(key));
      if (running === undefined) pending.set(key, loading);
      return via === undefined
        ? loading
        : loading.then((principal) => {
            remember(via, key);
            return principal;
          });
    },
    size: () => entries.size,
  };
}

export type PrincipalCache = ReturnType<typeof createPrincipalCache>;
