/** A section of the configuration as one door or module sees it: current value plus changes. */
export interface ConfigSection<T> {
  current(): T;
  /** Called after a reload swapped in a new value of this section. */
  subscribe(listener: (next: T, previous: T) => void): () => void;
  /**
   * Adds a check of this section in every new document, run before a reload swaps anything: a
   * RangeError or TypeError refuses the whole reload and keeps the last good configuration.
   * Absent on sections that never change. Returns a remover.
   */
  vet?(check: (next: T) => void, path?: string): () => void;
}
