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

/**
 * Header octets one client may make the HTTP/2 relay send to backends beyond what its header
 * blocks cost on the wire (HPACK lets a 19-octet block stand for a 64 KiB header list): a burst,
 * then a rate per second, over all the client's connections.
 */
const HEADER_BURST = 4 * 1024 * 1024;
const HEADERS_PER_SECOND = 1024 * 1024;

interface Entry {
  inFlight: number;
  resetTokens: number;
  headerTokens: number;
  at: number;
}

/** Why `acquire` refused: requests in flight at the cap, or the reset budget used up. */
export type Refusal = 'client-streams' | 'client-resets';

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
      entry = { inFlight: 0, resetTokens: RESET_BURST, headerTokens: HEADER_BURST, at: this.#now() };
      this.#clients.set(key, entry);
    }
    return entry;
  }

  #refill(entry: Entry): void {
    const now = this.#now();
    const seconds = (now - entry.at) / 1000;
    entry.resetTokens = Math.min(RESET_BURST, entry.resetTokens + seconds * RESETS_PER_SECOND);
    entry.headerTokens = Math.min(HEADER_BURST, entry.headerTokens + seconds * HEADERS_PER_SECOND);
    entry.at = now;
  }

  #full(entry: Entry): boolean {
    return entry.resetTokens >= RESET_BURST && entry.headerTokens >= HEADER_BURST;
  }

  /**
   * Takes a slot for the client `key` (see `clientKey`); returns why not when it has `cap` (at
   * most `maxStreamsPerClient`) in flight, or has used up its reset budget.
   */
  take(key: string, cap: number = this.#max): Refusal | undefined {
    const entry = this.#entry(key);
    if (entry.inFlight >= Math.min(cap, this.#max)) return 'client-streams';
    if (entry.resetTokens < 1) {
      this.#refill(entry);
      if (entry.resetTokens < 1) return 'client-resets';
    }
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
    if (excess <= 0) return true;
    const entry = this.#entry(key);
    this.#refill(entry);
    if (entry.headerTokens < excess) {
      if (entry.inFlight <= 0 && this.#full(entry)) this.#clients.delete(key);
      return false;
    }
    entry.headerTokens -= excess;
    return true;
  }

  /** Gives back a slot `acquire` gave. */
  release(key: string): void {
    const entry = this.#clients.get(key);
    if (entry === undefined) return;
    entry.inFlight--;
    if (entry.inFlight <= 0 && this.#full(entry)) this.#clients.delete(key);
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
      if (this.#full(entry)) this.#clients.delete(key);
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
