/**
 * A token bucket read synchronously on the data path (core/ratelimit's limiters are asynchronous
 * and keyed): `burst` tokens, refilled at `perSecond`; `now` is in milliseconds.
 */
export class Budget {
  readonly #burst: number;
  readonly #perSecond: number;
  #tokens: number;
  #at: number;

  constructor(burst: number, perSecond: number, now: number = performance.now()) {
    this.#burst = burst;
    this.#perSecond = perSecond;
    this.#tokens = burst;
    this.#at = now;
  }

  #refill(now: number): number {
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#at) / 1000) * this.#perSecond);
    this.#at = now;
    return this.#tokens;
  }

  /** Spends `cost`, into debt if need be; false when the budget is overdrawn after it. */
  spend(cost = 1, now: number = performance.now()): boolean {
    this.#tokens = this.#refill(now) - cost;
    return this.#tokens >= 0;
  }

  /** Whether `cost` is there (nothing is spent). */
  has(cost = 1, now: number = performance.now()): boolean {
    return this.#refill(now) >= cost;
  }

  /** Spends `cost` only when it is there. */
  take(cost: number, now: number = performance.now()): boolean {
    if (!this.has(cost, now)) return false;
    this.#tokens -= cost;
    return true;
  }

  /** Refilled completely (forgetting it would change nothing). */
  full(now: number = performance.now()): boolean {
    return this.#refill(now) >= this.#burst;
  }
}
