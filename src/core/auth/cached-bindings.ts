import type { Clock } from '#core/clock';
import type { ConfigSection } from '#core/config';
import type { BindingStore, RbacConfig, RoleBinding } from '#core/rbac';

// Bounded so that many distinct subjects (external JWTs, certificates) cannot grow it forever.
const MAX_ENTRIES = 10_000;

/**
 * A BindingStore whose `resolve` answers from memory for `ttlMs`. Every write through this
 * object (grant, revoke, replace, configuration swap or reload) empties the cache at once, so a
 * change made on this replica applies to the next request; another replica's change applies
 * within `ttlMs`. Concurrent misses of the same subjects share one query.
 */
export function createCachedBindingStore(
  inner: BindingStore,
  options: { readonly clock: Clock; readonly ttlMs: number; readonly config?: ConfigSection<RbacConfig> },
): BindingStore {
  const { clock, ttlMs } = options;
  const cache = new Map<string, { readonly at: number; readonly bindings: readonly RoleBinding[] }>();
  const loading = new Map<string, Promise<RoleBinding[]>>();
  // Bumped by every invalidation: a query that started before it must not fill the cache.
  let generation = 0;
  const invalidate = () => {
    generation += 1;
    cache.clear();
    loading.clear();
  };
  const unsubscribe = options.config?.subscribe(invalidate);

  const load = (key: string, subjects: readonly string[]): Promise<RoleBinding[]> => {
    const started = generation;
    const query = inner.resolve(subjects).then(
      (bindings) => {
        if (loading.get(key) === query) loading.delete(key);
        if (started === generation && ttlMs > 0) {
          if (cache.size >= MAX_ENTRIES) cache.clear();
          cache.set(key, { at: clock.now(), bindings: Object.freeze([...bindings]) });
        }
        return bindings;
      },
      (error: unknown) => {
        if (loading.get(key) === query) loading.delete(key);
        throw error;
      },
    );
    loading.set(key, query);
    return query;
  };

  const after = async <T>(write: Promise<T>): Promise<T> => {
    try {
      return await write;
    } finally {
      invalidate();
    }
  };

  return {
    async resolve(subjects) {
      // JSON, not a separator join: a subject containing the separator cannot alias a list.
      const key = JSON.stringify(subjects);
      const hit = cache.get(key);
      if (hit !== undefined && clock.now() - hit.at < ttlMs) return [...hit.bindings];
      return [...(await (loading.get(key) ?? load(key, subjects)))];
    },
    list: (subject) => inner.list(subject),
    grant: (subject, binding, actor) => after(inner.grant(subject, binding, actor)),
    revoke: (subject, binding) => after(inner.revoke(subject, binding)),
    replace: (subject, bindings, actor) => after(inner.replace(subject, bindings, actor)),
    setConfigBindings(bindings) {
      inner.setConfigBindings(bindings);
      invalidate();
    },
    close() {
      unsubscribe?.();
      inner.close();
    },
  };
}
