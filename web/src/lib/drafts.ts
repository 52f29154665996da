import { useCallback, useEffect, useState } from 'react';

const PREFIX = 'gatehouse.draft.';

/**
 * Form state that survives a session expiry, a reload and a failed submit: it lives in
 * sessionStorage until the form is submitted or discarded. Never use it for secrets.
 */
export function useDraft<T extends object>(
  key: string,
  initial: T,
): [T, (patch: Partial<T>) => void, () => void] {
  const storageKey = PREFIX + key;
  const [value, setValue] = useState<T>(() => {
    try {
      const raw = sessionStorage.getItem(storageKey);
      return raw === null ? initial : { ...initial, ...(JSON.parse(raw) as Partial<T>) };
    } catch {
      return initial;
    }
  });
  useEffect(() => {
    try {
      sessionStorage.setItem(storageKey, JSON.stringify(value));
    } catch {
      // A full or disabled storage only loses the draft, never the page.
    }
  }, [storageKey, value]);
  const update = useCallback((patch: Partial<T>) => setValue((v) => ({ ...v, ...patch })), []);
  const clear = useCallback(() => {
    sessionStorage.removeItem(storageKey);
    setValue(initial);
    // `initial` is a fresh literal on every render; the first one is the reset value.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [storageKey]);
  return [value, update, clear];
}

/** Forgets every draft (on an explicit sign-out, where keeping them would leak to the next user). */
export function clearDrafts(storage: Storage = sessionStorage): void {
  for (let i = storage.length - 1; i >= 0; i--) {
    const key = storage.key(i);
    if (key?.startsWith(PREFIX) === true) storage.removeItem(key);
  }
}
