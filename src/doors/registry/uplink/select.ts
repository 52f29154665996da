import { compilePattern, type Ecosystem } from '#core/policy';
import type { UplinkClient } from './client.ts';

/** Chooses the uplink of a package: the first whose `packages` patterns match its name. */
export class UplinkSelector {
  readonly #entries: { readonly client: UplinkClient; readonly tests: ((name: string) => boolean)[] }[];

  constructor(clients: readonly UplinkClient[], ecosystem: Ecosystem) {
    this.#entries = clients.map((client) => ({
      client,
      tests: client.config.packages.map((p) => {
        const test = compilePattern(p);
        return (name: string) => test(name, ecosystem);
      }),
    }));
  }

  get all(): readonly UplinkClient[] {
    return this.#entries.map((e) => e.client);
  }

  /** The uplink for a name, or undefined when no pattern matches. */
  select(name: string): UplinkClient | undefined {
    return this.#entries.find((e) => e.tests.some((t) => t(name)))?.client;
  }
}
