import type { Clock } from '#core/app';

export type BreakerState = 'closed' | 'open' | 'half-open';

/** Numeric form of a state for the breaker gauge. */
export const BREAKER_GAUGE: Readonly<Record<BreakerState, number>> = { closed: 0, 'half-open': 1, open: 2 };

/**
 * A circuit breaker: opens after `failures` consecutive failures, refuses calls for `cooldownMs`,
 * then lets exactly one probe through (half-open); its success closes the breaker, its failure
 * opens it again. It keeps a dead uplink from costing every request a full timeout.
 */
export class CircuitBreaker {
  readonly #clock: Clock;
  readonly #threshold: number;
  readonly #cooldownMs: number;
  readonly #onChange: (state: BreakerState) => void;
  #state: BreakerState = 'closed';
  #failures = 0;
  #openedAt = 0;
  #probing = false;

  constructor(options: {
    readonly clock: Clock;
    readonly failures: number;
    readonly cooldownMs: number;
    readonly onChange?: (state: BreakerState) => void;
  }) {
    this.#clock = options.clock;
    this.#threshold = options.failures;
    this.#cooldownMs = options.cooldownMs;
    this.#onChange = options.onChange ?? (() => {});
  }

  get state(): BreakerState {
    return this.#state;
  }

  /** Milliseconds until a probe is allowed (0 when calls may go through now). */
  retryInMs(): number {
    if (this.#state !== 'open') return 0;
    return Math.max(0, this.#openedAt + this.#cooldownMs - this.#clock.now());
  }

  /** Asks to make a call; false means refuse it without trying. */
  tryAcquire(): boolean {
    if (this.#state === 'closed') return true;
    if (this.#state === 'open') {
      if (this.retryInMs() > 0) return false;
      this.#set('half-open');
    }
    if (this.#probing) return false;
    this.#probing = true;
    return true;
  }

  success(): void {
    this.#failures = 0;
    this.#probing = false;
    if (this.#state !== 'closed') this.#set('closed');
  }

  failure(): void {
    this.#failures += 1;
    const wasProbe = this.#state === 'half-open';
    this.#probing = false;
    if (wasProbe || this.#failures >= this.#threshold) {
      this.#openedAt = this.#clock.now();
      this.#set('open');
    }
  }

  /** Gives back a permit whose call neither succeeded nor failed (e.g. the client went away). */
  release(): void {
    this.#probing = false;
  }

  #set(state: BreakerState): void {
    this.#state = state;
    this.#onChange(state);
  }
}
