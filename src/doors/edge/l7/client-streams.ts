/**
 * What one client may take of the backends behind one listener, over all its connections:
 * requests in flight (`maxStreamsPerClient`), and the stream resets on shared backend connections
 * its cancels and disconnects cause. Backend connections are shared: without these bounds one
 * client could hold every stream slot a backend offers (a body that never finishes keeps its
 * stream), or churn backend connections with resets (each 100 retire one, ADR 0150).
 *
 * A client is an IPv4 address, or an IPv6 /64 (one host usually has a whole /64 to pick from).
 */
import { anonymousClientKey } from '#core/ratelimit';
import { normalizeIp } from '../ip.ts';
import { Budget } from './budget.ts';

/** Resets on backend connections one client may cause: a burst, then a rate per second. */
const RESET_BURST = 1000;
const RESETS_PER_SECOND = 200;

/**
 * Header octets one client may make the HTTP/2 relay send to backends beyond what its header
 * blocks cost on the wire (HPACK lets a 19-octet block stand for a 64 KiB header list): a burst,
 * then a rate per second, over all the client's connections.
 */
const HEADER_BURST = 4 * 1024 * 1024;
const HEADERS_PER_SECOND = 1024 * 1024;

interface Entry {
  inFlight: number;
  readonly resets: Budget;
  readonly headers: Budget;
}

/** Why `acquire` refused: requests in flight at the cap, or the reset budget used up. */
export type Refusal = 'client-streams' | 'client-resets';

/**
 * The client an address belongs to (core's anonymous client key: the IPv4 address, or the IPv6
 * /64), after IPv4-mapped IPv6 addresses (what a dual-stack socket reports) become IPv4.
 */
export function clientKey(address: string): string {
  return anonymousClientKey(normalizeIp(address));
}

export class ClientStreams {
  readonly #max: number;
  readonly #clients = new Map<string, Entry>();
  readonly #now: () => number;

  constructor(max: number, now: () => number = performance.now.bind(performance)) {
    this.#max = max;
    this.#now = now;
  }

  #entry(key: string): Entry {
    let entry = this.#clients.get(key);
    if (entry === undefined) {
      const now = this.#now();
      entry = {
        inFlight: 0,
        resets: new Budget(RESET_BURST, RESETS_PER_SECOND, now),
        headers: new Budget(HEADER_BURST, HEADERS_PER_SECOND, now),
      };
      this.#clients.set(key, entry);
    }
    return entry;
  }

  /** Nothing in flight and both budgets refilled: forgetting the client changes nothing. */
  #idle(entry: Entry): boolean {
    const now = this.#now();
    return entry.inFlight <= 0 && entry.resets.full(now) && entry.headers.full(now);
  }

  /**
   * Takes a slot for the client `key` (see `clientKey`); returns why not when it has `cap` (at
   * most `maxStreamsPerClient`) in flight, or has used up its reset budget.
   */
  take(key: string, cap: number = this.#max): Refusal | undefined {
    const entry = this.#entry(key);
    if (entry.inFlight >= Math.min(cap, this.#max)) return 'client-streams';
    if (!entry.resets.has(1, this.#now())) return 'client-resets';
    entry.inFlight++;
    return undefined;
  }

  /** `take` as a yes or no. */
  acquire(key: string, cap: number = this.#max): boolean {
    return this.take(key, cap) === undefined;
  }

  /**
   * Charges header octets sent to a backend beyond their wire size (and allowance); false, and
   * nothing charged, when the client's budget does not cover them.
   */
  chargeHeaders(key: string, excess: number): boolean {
    return excess <= 0 || this.#entry(key).headers.take(excess, this.#now());
  }

  /** Gives back a slot `acquire` gave. */
  release(key: string): void {
    const entry = this.#clients.get(key);
    if (entry === undefined) return;
    entry.inFlight--;
    if (this.#idle(entry)) this.#clients.delete(key);
  }

  /** Charges a reset sent to a shared backend connection because of this client. */
  chargeReset(key: string): void {
    this.#clients.get(key)?.resets.spend(1, this.#now());
  }

  /** Forgets clients with nothing in flight whose budgets have refilled (called now and then). */
  prune(): void {
    for (const [key, entry] of this.#clients) if (this.#idle(entry)) this.#clients.delete(key);
  }

  /** Requests in flight for a client (tests, metrics). */
  count(key: string): number {
    return this.#clients.get(key)?.inFlight ?? 0;
  }

  /** Clients known (with requests in flight or a budget still refilling). */
  get clients(): number {
    return this.#clients.size;
  }
}
