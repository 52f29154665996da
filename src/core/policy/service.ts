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
  /** Where the section is in the document (`registry.policy`), for the reload's refusal. */
  readonly configPath?: string;
}

/**
 * Builds the engine from the section now (throwing on a bad configuration, at validate time)
 * and rebuilds it on every reload; a policy that fails to compile refuses the reload (through
 * the section's vet) and the last good engine stays.
 */
export function createPolicyService(
  section: ConfigSection<PolicyConfig>,
  options: PolicyServiceOptions,
): PolicyService {
  let engine = createPolicyEngine(section.current(), options);
  const listeners = new Set<(next: PolicyEngine, previous: PolicyEngine) => void>();
  // A policy that does not compile refuses the whole reload, so the document in force and the
  // engine in force never differ; the subscriber below keeps its guard for sources without vet.
  // The engine the check compiled is the one swapped in (a reload hands the subscriber the very
  // object it checked), so a reload compiles the policy once.
  let vetted: { readonly config: PolicyConfig; readonly engine: PolicyEngine } | undefined;
  const unvet = section.vet?.((next) => {
    vetted = { config: next, engine: createPolicyEngine(next, options) };
  }, options.configPath);
  const unsubscribe = section.subscribe((next) => {
    const checked = vetted?.config === next ? vetted.engine : undefined;
    vetted = undefined;
    let built: PolicyEngine;
    try {
      built = checked ?? createPolicyEngine(next, options);
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
      unvet?.();
      unsubscribe();
      listeners.clear();
    },
  };
}
