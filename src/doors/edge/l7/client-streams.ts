/**
 * What one client may take of the backends behind one listener, over all its connections:
 * requests in flight (`maxStreamsPerClient`), and the stream resets on shared backend connections
 * its cancels and disconnects cause. Backend connections are shared: without these bounds one
 * client could hold every stream slot a backend offers (a body that never finishes keeps its
 * stream), or churn backend connections with resets (each 100 retire one, ADR 0150).
 *
 * A client is an IPv4 address, or an IPv6 /64 (one host usually has a whole /64 to pick from).
 */
import { normalizeIp } from '../ip.ts';

/** Resets on backend connections one client may cause: a burst, then a rate per second. */
const RESET_BURST = 1000;
const RESETS_PER_SECOND = 200;

interface Entry {
  inFlight: number;
  resetTokens: number;
  resetAt: number;
}

/** The client an address belongs to: the address itself, or its IPv6 /64. */
export function clientKey(address: string): string {
  const ip = normalizeIp(address);
  if (!ip.includes(':')) return ip;
  // Expand `::` so the first four groups are the /64.
  const [left = '', right] = ip.split('::');
  const head = left === '' ? [] : left.split(':');
  if (right === undefined || head.length >= 4) return `${head.slice(0, 4).join(':')}::/64`;
  const tail = right === '' ? [] : right.split(':');
  const groups = [...head, ...Array.from({ length: 8 - head.length - tail.length }, () => '0'), ...tail];
  return `${groups.slice(0, 4).join(':')}::/64`;
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
      entry = { inFlight: 0, resetTokens: RESET_BURST, resetAt: this.#now() };
      this.#clients.set(key, entry);
    }
    return entry;
  }

  #refill(entry: Entry): void {
    const now = this.#now();
    entry.resetTokens = Math.min(
      RESET_BURST,
      entry.resetTokens + ((now - entry.resetAt) / 1000) * RESETS_PER_SECOND,
    );
    entry.resetAt = now;
  }

  /**
   * Takes a slot for the client `key` (see `clientKey`); false when it has `cap` (at most
   * `maxStreamsPerClient`) in flight, or has used up its reset budget.
   */
  acquire(key: string, cap: number = this.#max): boolean {
    const entry = this.#entry(key);
    if (entry.inFlight >= Math.min(cap, this.#max)) return false;
    if (entry.resetTokens < 1) {
      this.#refill(entry);
      if (entry.resetTokens < 1) return false;
    }
    entry.inFlight++;
    return true;
  }

  /** Gives back a slot `acquire` gave. */
  release(key: string): void {
    const entry = this.#clients.get(key);
    if (entry === undefined) return;
    entry.inFlight--;
    if (entry.inFlight <= 0 && entry.resetTokens >= RESET_BURST) this.#clients.delete(key);
  }

  /** Charges a reset sent to a shared backend connection because of this client. */
  chargeReset(key: string): void {
    const entry = this.#clients.get(key);
    if (entry === undefined) return;
    this.#refill(entry);
    entry.resetTokens--;
  }

  /** Forgets clients with nothing in flight whose budget has refilled (called now and then). */
  prune(): void {
    for (const [key, entry] of this.#clients) {
      if (entry.inFlight > 0) continue;
      this.#refill(entry);
      if (entry.resetTokens >= RESET_BURST) this.#clients.delete(key);
    }
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
