/** A section of the configuration as one door or module sees it: current value plus changes. */
export interface ConfigSection<T> {
  current(): T;
  /** Called after a reload swapped in a new value of this section. */
  subscribe(listener: (next: T, previous: T) => void): () => void;
}
