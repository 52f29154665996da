import type { ConfigSection } from '#core/config';
import type { PolicyConfig } from './config.ts';
import { createPolicyEngine, type PolicyEngine, type PolicyEngineOptions } from './engine.ts';

/** Holds the current engine and swaps it atomically when the policy section reloads. */
export interface PolicyService extends Disposable {
  /** The engine to use for one request; keep the reference for the whole request. */
  current(): PolicyEngine;
  /** Called with the new engine after each successful swap (e.g. to drop cached decisions). */
  onSwap(listener: (next: PolicyEngine, previous: PolicyEngine) => void): () => void;
}

export interface PolicyServiceOptions extends PolicyEngineOptions {
  /** Told about a reloaded section that failed to compile; the previous engine stays. */
  readonly onError?: (error: Error) => void;
}

/**
 * Builds the engine from the section now (throwing on a bad configuration, at validate time)
 * and rebuilds it on every reload; a reload that fails to compile keeps the last good engine.
 */
export function createPolicyService(
  section: ConfigSection<PolicyConfig>,
  options: PolicyServiceOptions,
): PolicyService {
  let engine = createPolicyEngine(section.current(), options);
  const listeners = new Set<(next: PolicyEngine, previous: PolicyEngine) => void>();
  const unsubscribe = section.subscribe((next) => {
    let built: PolicyEngine;
    try {
      built = createPolicyEngine(next, options);
    } catch (error) {
      options.onError?.(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    const previous = engine;
    engine = built;
    if (built.version !== previous.version) for (const l of listeners) l(built, previous);
  });
  return {
    current: () => engine,
    onSwap(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    [Symbol.dispose]: () => {
      unsubscribe();
      listeners.clear();
    },
  };
}
