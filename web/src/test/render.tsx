import { render } from '@testing-library/react';
import { MemoryRouter, useLocation } from 'react-router';
import { ApiClient } from '../api/client.ts';
import { App } from '../app.tsx';
import { fakeServer, json, token } from './fake-server.ts';

export function Where() {
  const location = useLocation();
  return <output data-testid="location">{location.pathname + location.search}</output>;
}

/** Tokens for a principal with these bindings, stored as a signed-in session. */
export function signIn(bindings: { role: string; ns: string }[], name = 'carol') {
  sessionStorage.setItem(
    'gatehouse.session',
    JSON.stringify({
      accessToken: token({ sub: 'u1', name, bindings }),
      refreshToken: 'r1',
      expiresAt: Date.now() + 900_000,
    }),
  );
}

export function renderApp(path: string, routes: Parameters<typeof fakeServer>[0]) {
  const server = fakeServer({
    'GET /api/artifacts': () => json({ items: [], total: 0 }),
    'GET /api/artifacts/-/repositories': () => json({ repositories: [], total: 0 }),
    ...routes,
  });
  const client = new ApiClient({ storage: sessionStorage, fetch: server.fetch });
  const view = render(
    <MemoryRouter initialEntries={[path]}>
      <App client={client} />
      <Where />
    </MemoryRouter>,
  );
  return { ...view, server, client };
}
