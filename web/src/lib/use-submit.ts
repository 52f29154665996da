import { useCallback, useRef, useState } from 'react';

export interface Submission {
  /** True while an action runs: its button shows progress and is disabled, its form is aria-busy. */
  readonly busy: boolean;
  /** What the last action threw, until the next one starts. */
  readonly error: unknown;
  /**
   * Runs `action` unless one is already in flight (then it does nothing, so a double click or a
   * second Enter sends one request). The form's values are the caller's and stay as they are when
   * the action fails; the failure lands in `error`.
   */
  run(action: () => Promise<unknown>): Promise<void>;
}

/** One submit or action button's request at a time. */
export function useSubmit(): Submission {
  // A ref, not the state: two clicks before a re-render both see the state's old `false`.
  const inFlight = useRef(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const run = useCallback(async (action: () => Promise<unknown>) => {
    if (inFlight.current) return;
    inFlight.current = true;
    setBusy(true);
    setError(undefined);
    try {
      await action();
    } catch (e) {
      setError(e);
    } finally {
      inFlight.current = false;
      setBusy(false);
    }
  }, []);
  return { busy, error, run };
}
