/** The tokens of a signed-in session. */
export interface Tokens {
  readonly accessToken: string;
  readonly refreshToken: string;
  /** Epoch milliseconds at which the access token expires. */
  readonly expiresAt: number;
}

const KEY = 'gatehouse.session';

/**
 * Keeps the tokens in sessionStorage: a reload keeps the session, closing the tab ends it, and
 * other tabs (and other sites) never see it.
 */
export class SessionStore {
  readonly #storage: Storage;
  #tokens: Tokens | undefined;

  constructor(storage: Storage) {
    this.#storage = storage;
    this.#tokens = SessionStore.#read(storage);
  }

  static #read(storage: Storage): Tokens | undefined {
    try {
      const raw = storage.getItem(KEY);
      if (raw === null) return undefined;
      const t = JSON.parse(raw) as Partial<Tokens>;
      if (
        typeof t.accessToken === 'string' &&
        typeof t.refreshToken === 'string' &&
        typeof t.expiresAt === 'number'
      )
        return { accessToken: t.accessToken, refreshToken: t.refreshToken, expiresAt: t.expiresAt };
    } catch {
      // A corrupt entry is the same as none.
    }
    return undefined;
  }

  get tokens(): Tokens | undefined {
    return this.#tokens;
  }

  save(tokens: Tokens): void {
    this.#tokens = tokens;
    this.#storage.setItem(KEY, JSON.stringify(tokens));
  }

  clear(): void {
    this.#tokens = undefined;
    this.#storage.removeItem(KEY);
  }
}
