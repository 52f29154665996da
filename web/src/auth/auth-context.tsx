import { createContext, type ReactNode, useCallback, useContext, useEffect, useMemo, useState } from 'react';
import type { ApiClient } from '../api/client.ts';
import { ApiError } from '../api/problem.ts';
import { clearDrafts } from '../lib/drafts.ts';
import { type Action, can, type Me, meFromAnswer, meFromToken } from './principal.ts';

export type AuthState =
  | { readonly status: 'loading' }
  | { readonly status: 'signed-out'; readonly expired: boolean }
  | { readonly status: 'signed-in'; readonly me: Me }
  /** Signed in, but who we are could not be read (server down, 5xx): retry, never guess. */
  | { readonly status: 'unavailable'; readonly error: unknown };

interface AuthContextValue {
  readonly client: ApiClient;
  readonly state: AuthState;
  readonly me: Me | undefined;
  can(action: Action): boolean;
  login(username: string, password: string): Promise<void>;
  logout(): Promise<void>;
  /** Reads the principal again after an `unavailable` state. */
  retry(): void;
}

const AuthContext = createContext<AuthContextValue | undefined>(undefined);

/** Who the token belongs to: `/api/auth/me` when the server has it, else the token's own claims. */
export async function loadMe(client: ApiClient): Promise<Me> {
  try {
    const me = meFromAnswer(await client.get('/api/auth/me'));
    if (me !== undefined) return me;
  } catch (error) {
    if (!(error instanceof ApiError) || (error.status !== 404 && error.status !== 405)) throw error;
  }
  const token = await client.accessToken();
  return meFromToken(token) ?? { id: 'unknown', name: 'unknown', bindings: [] };
}

export function AuthProvider({ client, children }: { client: ApiClient; children: ReactNode }) {
  const [state, setState] = useState<AuthState>(() =>
    client.signedIn ? { status: 'loading' } : { status: 'signed-out', expired: false },
  );

  const resolve = useCallback(async () => {
    try {
      setState({ status: 'signed-in', me: await loadMe(client) });
    } catch (error) {
      if (error instanceof ApiError && error.status === 401)
        setState({ status: 'signed-out', expired: true });
      // A principal without roles would show every page as forbidden: say the server failed instead.
      else setState({ status: 'unavailable', error });
    }
  }, [client]);

  useEffect(() => {
    if (client.signedIn) void resolve();
    return client.onSession((event) => {
      if (event === 'expired') setState({ status: 'signed-out', expired: true });
      else if (event === 'signed-out') setState({ status: 'signed-out', expired: false });
    });
  }, [client, resolve]);

  const value = useMemo<AuthContextValue>(() => {
    const me = state.status === 'signed-in' ? state.me : undefined;
    return {
      client,
      state,
      me,
      can: (action) => can(me, action),
      async login(username, password) {
        await client.login(username, password);
        await resolve();
      },
      async logout() {
        clearDrafts();
        await client.logout();
      },
      retry() {
        setState({ status: 'loading' });
        void resolve();
      },
    };
  }, [client, state, resolve]);

  return <AuthContext value={value}>{children}</AuthContext>;
}

export function useAuth(): AuthContextValue {
  const value = useContext(AuthContext);
  if (value === undefined) throw new TypeError('useAuth needs an AuthProvider');
  return value;
}

/** The API client of the signed-in session. */
export function useClient(): ApiClient {
  return useAuth().client;
}
