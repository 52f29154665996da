import { readFile } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import { ConfigValidationError, type Environment, type LoadOptions, loadConfig } from './load.ts';
import type { ConfigIssue, Schema } from './schema.ts';
import { type FileWatch, serialRuns, watchFiles } from './watch.ts';

/** What one reload did; emitted to listeners and returned by `reload()`. */
export type ReloadOutcome =
  | {
      readonly ok: true;
      /** Dynamic keys whose value changed and was swapped in. */
      readonly changed: readonly string[];
      /** Static keys that differ in the file but keep their old value until a restart. */
      readonly restartNeeded: readonly string[];
      /** Subscribers that threw on the swap (the others got the new values; a bug to log). */
      readonly listenerErrors?: readonly Error[];
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
  const element = schema.element ?? schema.inner?.element;
  if (element !== undefined && schema.meta.dynamic !== true && hasDynamic(element)) {
    return mergeElements(element, previous, next, path);
  }
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

/** Whether a schema is dynamic or holds a dynamic key anywhere below it. */
function hasDynamic(schema: Schema<unknown>): boolean {
  if (schema.meta.dynamic === true) return true;
  const below = [
    ...Object.values(schema.fields ?? {}),
    ...(schema.element === undefined ? [] : [schema.element]),
    ...(schema.inner === undefined ? [] : [schema.inner]),
  ];
  return below.some(hasDynamic);
}

/**
 * A static list whose items hold dynamic keys (the firewall of each edge listener): with as many
 * items as before, each item is merged in place, so its dynamic keys apply and its static ones
 * wait for a restart; a list that gained or lost items needs a restart as a whole.
 */
function mergeElements(element: Schema<unknown>, previous: unknown, next: unknown, path: string): Merge {
  if (!Array.isArray(previous) || !Array.isArray(next) || previous.length !== next.length) {
    const same = isDeepStrictEqual(previous, next);
    return { value: previous, changed: [], restartNeeded: same ? [] : [path] };
  }
  const merged = previous.map((item: unknown, i) => mergeDynamic(element, item, next[i], `${path}[${i}]`));
  return {
    value: merged.map((m) => m.value),
    changed: merged.flatMap((m) => m.changed),
    restartNeeded: merged.flatMap((m) => m.restartNeeded),
  };
}

export interface ConfigStoreOptions {
  readonly file?: string;
  readonly env?: Environment;
  readonly overrides?: NonNullable<LoadOptions['overrides']>;
}

/**
 * Holds the current, immutable configuration. `reload()` validates the whole new document (the
 * schema, then every check added with `vet`) and swaps the dynamic parts atomically; an invalid
 * document keeps the last good one.
 */
export class ConfigStore<T> {
  readonly #schema: Schema<T>;
  readonly #options: ConfigStoreOptions;
  readonly #listeners = new Set<ConfigListener<T>>();
  readonly #checks = new Set<(next: T) => void>();
  readonly #outcomeListeners = new Set<(outcome: ReloadOutcome) => void>();
  #current: T;
  #watch: FileWatch | undefined;
  /** `fromWatch` stays true only when every call folded into one run came from the file watch. */
  readonly #run = serialRuns(
    (fromWatch: boolean) => this.#reload(fromWatch),
    (queued, next) => queued && next,
  );

  /** What loading the first document warned about (unknown GATEHOUSE_* variables), to report at start. */
  readonly warnings: readonly string[];

  constructor(
    schema: Schema<T>,
    initial: T,
    options: ConfigStoreOptions = {},
    warnings: readonly string[] = [],
  ) {
    this.#schema = schema;
    this.#current = deepFreeze(initial);
    this.#options = options;
    this.warnings = warnings;
  }

  /** Loads and validates the configuration, throwing ConfigValidationError on any problem. */
  static async open<T>(schema: Schema<T>, options: ConfigStoreOptions = {}): Promise<ConfigStore<T>> {
    const loaded = await loadConfig(schema, options);
    return new ConfigStore(schema, loaded.config, options, loaded.warnings);
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

  /**
   * Adds a check of every new document, run before anything is swapped: what the schema cannot
   * say (a policy that does not compile, keys that must be set together). A RangeError or
   * TypeError refuses the reload, as a schema error does (its message `path: problem`, or
   * `path` when the message names none); the last good configuration stays. Returns a remover.
   */
  vet(check: (next: T) => void, path = ''): () => void {
    const checked = (next: T) => {
      try {
        check(next);
      } catch (error) {
        if (!(error instanceof RangeError || error instanceof TypeError)) throw error;
        throw new ConfigValidationError(this.#options.file ?? 'the environment', [issueOf(error, path)]);
      }
    };
    this.#checks.add(checked);
    return () => this.#checks.delete(checked);
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
    return this.#run(false);
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
      for (const check of this.#checks) check(loaded.config);
      const previous = this.#current;
      const merged = mergeDynamic(this.#schema as Schema<unknown>, previous, loaded.config);
      const failed: Error[] = [];
      if (merged.changed.length > 0) {
        this.#current = deepFreeze(merged.value as T);
        // One failing subscriber must not keep the others on the old values.
        for (const listener of this.#listeners) {
          try {
            listener(this.#current, previous);
          } catch (error) {
            failed.push(error instanceof Error ? error : new Error(String(error)));
          }
        }
      }
      outcome = {
        ok: true,
        changed: merged.changed,
        restartNeeded: merged.restartNeeded,
        ...(failed.length === 0 ? {} : { listenerErrors: failed }),
      };
    } catch (error) {
      outcome = { ok: false, error: error instanceof Error ? error : new Error(String(error)) };
    }
    for (const listener of this.#outcomeListeners) {
      try {
        listener(outcome);
      } catch {
        // Logging and audit of the outcome; a failure there does not undo the reload.
      }
    }
    return outcome;
  }

  /**
   * Reloads when the file changes: debounced, as editors write files in several steps, and on
   * the file's folder, so saves by rename and Kubernetes ConfigMap updates are seen too.
   */
  watch(debounceMs = 200): void {
    const file = this.#options.file;
    if (file === undefined || this.#watch !== undefined) return;
    this.#watch = watchFiles(() => void this.#run(true), { debounceMs });
    this.#watch.add(file);
  }

  close(): void {
    this.#watch?.close();
    this.#watch = undefined;
  }
}

/** A check's RangeError or TypeError as a configuration issue: `path: problem` when it says so. */
export function issueOf(error: Error, path = ''): ConfigIssue {
  const at = error.message.indexOf(': ');
  const named = at > 0 && /^[\w.[\]"-]+$/.test(error.message.slice(0, at));
  return named
    ? {
        path: error.message.slice(0, at),
        value: undefined,
        expected: error.message.slice(at + 2),
        problem: error.message.slice(at + 2),
      }
    : { path, value: undefined, expected: error.message, problem: error.message };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
