/**
 * core/clock: the time source. A leaf module (imports nothing) so that every core module can
 * take a Clock without importing core/app, which composes them all.
 * @module
 */

/** Time source; tests inject a fake one instead of sleeping. */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

/** The real clock. */
export const systemClock: Clock = { now: () => Date.now() };
