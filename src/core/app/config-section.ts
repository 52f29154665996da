import { isDeepStrictEqual } from 'node:util';
import type { ConfigSection } from './app.ts';

/** A ConfigSection that never changes: tests and static settings. */
export function staticSection<T>(value: T): ConfigSection<T> {
  return { current: () => value, subscribe: () => () => {} };
}

/** The minimum a configuration store offers (ConfigStore of `#core/config` fits). */
export interface SectionSource<R> {
  readonly current: R;
  subscribe(listener: (next: R, previous: R) => void): () => void;
  vet?(check: (next: R) => void, path?: string): () => void;
}

/**
 * A view on one section of a reloadable configuration. Listeners run only when the selected
 * value changed: a reload rebuilds every object of the document, so identity says nothing.
 */
export function selectSection<R, T>(source: SectionSource<R>, select: (root: R) => T): ConfigSection<T> {
  return {
    current: () => select(source.current),
    subscribe(listener) {
      return source.subscribe((next, previous) => {
        const a = select(next);
        const b = select(previous);
        if (!isDeepStrictEqual(a, b)) listener(a, b);
      });
    },
    ...(source.vet === undefined
      ? {}
      : {
          vet: (check: (next: T) => void, path?: string) =>
            source.vet?.((next) => check(select(next)), path) ?? (() => {}),
        }),
  };
}
