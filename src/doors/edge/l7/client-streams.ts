/**
 * Requests in flight to backends per client address, over all connections of one listener
 * (`maxStreamsPerClient`). Backend connections are shared: without this cap one client could
 * hold every stream slot a backend offers (a body that never finishes keeps its stream), and
 * everybody else's requests would queue behind it.
 */
export class ClientStreams {
  readonly #max: number;
  readonly #inFlight = new Map<string, number>();

  constructor(max: number) {
    this.#max = max;
  }

  /** Takes a slot for `address`; false when it already has the maximum in flight. */
  acquire(address: string): boolean {
    const n = this.#inFlight.get(address) ?? 0;
    if (n >= this.#max) return false;
    this.#inFlight.set(address, n + 1);
    return true;
  }

  /** Gives back a slot `acquire` gave. */
  release(address: string): void {
    const n = this.#inFlight.get(address) ?? 0;
    if (n <= 1) this.#inFlight.delete(address);
    else this.#inFlight.set(address, n - 1);
  }

  /** Requests in flight for `address` (tests, metrics). */
  count(address: string): number {
    return this.#inFlight.get(address) ?? 0;
  }

  /** Client addresses with requests in flight. */
  get clients(): number {
    return this.#inFlight.size;
  }
}
