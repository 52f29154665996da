import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type SectionSource, selectSection, staticSection } from './config-section.ts';

interface Root {
  readonly server: { readonly rate: number };
  readonly other: { readonly x: number };
}

function source(initial: Root): SectionSource<Root> & { swap(next: Root): void } {
  let current = initial;
  const listeners = new Set<(next: Root, previous: Root) => void>();
  return {
    get current() {
      return current;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    swap(next) {
      const previous = current;
      current = next;
      for (const l of listeners) l(next, previous);
    },
  };
}

void describe('config sections', () => {
  void it('staticSection returns its value and never calls listeners', () => {
    const section = staticSection({ a: 1 });
    assert.deepEqual(section.current(), { a: 1 });
    section.subscribe(() => assert.fail('called'))();
  });

  void it('selectSection calls listeners only when the selected part changed', () => {
    const store = source({ server: { rate: 1 }, other: { x: 1 } });
    const section = selectSection(store, (root) => root.server);
    const seen: number[] = [];
    const off = section.subscribe((next, previous) => seen.push(previous.rate, next.rate));
    store.swap({ server: { rate: 1 }, other: { x: 2 } });
    store.swap({ server: { rate: 5 }, other: { x: 2 } });
    assert.deepEqual(seen, [1, 5]);
    assert.equal(section.current().rate, 5);
    off();
    store.swap({ server: { rate: 9 }, other: { x: 2 } });
    assert.deepEqual(seen, [1, 5]);
  });
});
