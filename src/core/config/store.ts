import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import { type Environment, type LoadOptions, loadConfig } from './load.ts';
import type { Schema } from './schema.ts';

/** What one reload did; emitted to listeners and returned by `reload()`. */
export type ReloadOutcome =
  | {
      readonly ok: true;
      /** Dynamic keys whose value changed and was swapped in. */
      readonly changed: readonly string[];
      /** Static keys that differ in the file but keep their old value until a restart. */
      readonly restartNeeded: readonly string[];
    }
  | { readonly ok: false; readonly error: Error };

export type ConfigListener<T> = (next: T, previous: T) => void;

interface Merge {
  value: unknown;
  changed: string[];
  restartNeeded: string[];
}

/**
 * Takes dynamic subtrees from `next` and keeps static values from `previous`, so that a
 * reload never half-applies a setting that needs a restart.
 */
export function mergeDynamic(schema: Schema<unknown>, previous: unknown, next: unknown, path = ''): Merge {
  const fields = schema.fields ?? schema.inner?.fields;
  if (schema.meta.dynamic === true || fields === undefined) {
    const same = isDeepStrictEqual(previous, next);
    if (schema.meta.dynamic === true) return { value: next, changed: same ? [] : [path], restartNeeded: [] };
    return { value: previous, changed: [], restartNeeded: same ? [] : [path] };
  }
  if (typeof previous !== 'object' || previous === null || typeof next !== 'object' || next === null) {
    const same = isDeepStrictEqual(previous, next);
    return { value: previous, changed: [], restartNeeded: same ? [] : [path] };
  }
  const out: Record<string, unknown> = {};
  const changed: string[] = [];
  const restartNeeded: string[] = [];
  for (const [key, child] of Object.entries(fields)) {
    const childPath = path === '' ? key : `${path}.${key}`;
    const merged = mergeDynamic(
      child,
      (previous as Record<string, unknown>)[key],
      (next as Record<string, unknown>)[key],
      childPath,
    );
    if (merged.value !== undefined) out[key] = merged.value;
    changed.push(...merged.changed);
    restartNeeded.push(...merged.restartNeeded);
  }
  return { value: out, changed, restartNeeded };
}

export interface ConfigStoreOptions {
  readonly file?: string;
  readonly env?: Environment;
  readonly overrides?: NonNullable<LoadOptions['overrides']>;
}

/**
 * Holds the current, immutable configuration. `reload()` validates the whole new document and
 * swaps the dynamic parts atomically; an invalid document keeps the last good one.
 */
export class ConfigStore<T> {
  readonly #schema: Schema<T>;
  readonly #options: ConfigStoreOptions;
  readonly #listeners = new Set<ConfigListener<T>>();
  readonly #outcomeListeners = new Set<(outcome: ReloadOutcome) => void>();
  #current: T;
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #reloading: Promise<ReloadOutcome> | undefined;
  /** The reload that runs after the current one, shared by every call that arrived meanwhile. */
  #queued: { promise: Promise<ReloadOutcome>; fromWatch: boolean } | undefined;

  constructor(schema: Schema<T>, initial: T, options: ConfigStoreOptions = {}) {
    this.#schema = schema;
    this.#current = deepFreeze(initial);
    this.#options = options;
  }

  /** Loads and validates the configuration, throwing ConfigValidationError on any problem. */
  static async open<T>(schema: Schema<T>, options: ConfigStoreOptions = {}): Promise<ConfigStore<T>> {
    const loaded = await loadConfig(schema, options);
    return new ConfigStore(schema, loaded.config, options);
  }

  get current(): T {
    return this.#current;
  }

  get file(): string | undefined {
    return this.#options.file;
  }

  get schema(): Schema<T> {
    return this.#schema;
  }

  /** Calls `listener` after every successful swap. Returns an unsubscribe function. */
  subscribe(listener: ConfigListener<T>): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Calls `listener` with the outcome of every reload attempt (for logging and audit). */
  onReload(listener: (outcome: ReloadOutcome) => void): () => void {
    this.#outcomeListeners.add(listener);
    return () => this.#outcomeListeners.delete(listener);
  }

  /**
   * Re-reads the file and environment. A call made while a reload is already reading waits for it
   * and then reads again (one more read for all the calls that arrived meanwhile), so the outcome
   * always reflects the file as it was when the call was made, never an earlier read of it.
   */
  reload(): Promise<ReloadOutcome> {
    return this.#schedule(false);
  }

  #schedule(fromWatch: boolean): Promise<ReloadOutcome> {
    if (this.#reloading === undefined) {
      this.#reloading = this.#reload(fromWatch).finally(() => {
        this.#reloading = undefined;
      });
      return this.#reloading;
    }
    if (this.#queued !== undefined) {
      this.#queued.fromWatch &&= fromWatch;
      return this.#queued.promise;
    }
    const queued: { promise: Promise<ReloadOutcome>; fromWatch: boolean } = {
      fromWatch,
      promise: this.#reloading.then((): Promise<ReloadOutcome> => {
        this.#queued = undefined;
        return this.#schedule(queued.fromWatch);
      }),
    };
    this.#queued = queued;
    return queued.promise;
  }

  async #reload(fromWatch: boolean): Promise<ReloadOutcome> {
    let outcome: ReloadOutcome;
    try {
      let options: LoadOptions = this.#options;
      if (fromWatch && options.file !== undefined) {
        // A file written in place is empty between its truncation and the write: the watch
        // must not take that moment for a document of defaults. SIGHUP and the API still apply it.
        const text = await readFile(options.file, 'utf8').catch(() => undefined);
        if (text?.trim() === '') return { ok: true, changed: [], restartNeeded: [] };
        if (text !== undefined) options = { ...options, text };
      }
      const loaded = await loadConfig(this.#schema, options);
      const previous = this.#current;
      const merged = mergeDynamic(this.#schema as Schema<unknown>, previous, loaded.config);
      if (merged.changed.length > 0) {
        this.#current = deepFreeze(merged.value as T);
        for (const listener of this.#listeners) listener(this.#current, previous);
      }
      outcome = { ok: true, changed: merged.changed, restartNeeded: merged.restartNeeded };
    } catch (error) {
      outcome = { ok: false, error: error instanceof Error ? error : new Error(String(error)) };
    }
    for (const listener of this.#outcomeListeners) listener(outcome);
    return outcome;
  }

  /** Reloads when the file changes (debounced, as editors write files in several steps). */
  watch(debounceMs = 200): void {
    const file = this.#options.file;
    if (file === undefined || this.#watcher !== undefined) return;
    this.#watcher = watch(file, { persistent: false }, () => {
      clearTimeout(this.#debounce);
      this.#debounce = setTimeout(() => void this.#schedule(true), debounceMs);
      this.#debounce.unref();
    });
    this.#watcher.on('error', () => {
      // The file was replaced (rename-on-save); watch the new one.
      this.#watcher?.close();
      this.#watcher = undefined;
      setTimeout(() => this.watch(debounceMs), debounceMs).unref();
    });
  }

  close(): void {
    clearTimeout(this.#debounce);
    this.#watcher?.close();
    this.#watcher = undefined;
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
