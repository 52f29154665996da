import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { json, problem, token } from './test/fake-server.ts';
import { renderApp, signIn } from './test/render.tsx';

const ADMIN = [{ role: 'admin', ns: '*' }];
const CONSUMER = [{ role: 'consumer', ns: 'team-a' }];
/** jsdom has no wide viewport: the navigation sits in the drawer behind the menu button. */
async function openNav() {
  await userEvent.setup().click(await screen.findByRole('button', { name: 'Open navigation' }));
  return screen.findByRole('navigation', { name: 'Main' });
}

const pair = (bindings: unknown, name = 'root') => ({
  accessToken: token({ sub: 'u9', name, bindings }),
  refreshToken: 'r2',
  expiresIn: 900,
});

describe('console', () => {
  it('sends a signed-out visitor to the login page and back to where they were', async () => {
    const user = userEvent.setup();
    renderApp('/audit?x=1', {
      'POST /api/auth/login': () => json(pair(ADMIN)),
      'GET /api/audit-logs': () => json({ events: [] }),
    });
    await screen.findByRole('heading', { name: 'Sign in to Gatehouse' });
    expect(screen.getByTestId('location').textContent).toBe('/login?next=%2Faudit%3Fx%3D1');
    await user.type(screen.getByLabelText(/Username/), 'root');
    await user.type(screen.getByLabelText(/Password/), 'correct horse battery');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    await screen.findByRole('heading', { name: 'Audit log' });
    expect(screen.getByTestId('location').textContent).toBe('/audit?x=1');
  });

  it('shows a failed login with the server message and errorId, and clears the password only', async () => {
    const user = userEvent.setup();
    renderApp('/login', {
      'POST /api/auth/login': () =>
        problem(401, 'GW_ERR_AUTH_INVALID_CREDENTIALS', 'Wrong user name or password', 'e-77'),
    });
    await user.type(await screen.findByLabelText(/Username/), 'root');
    await user.type(screen.getByLabelText(/Password/), 'nope-nope-nope');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Wrong user name or password');
    expect(within(alert).getByTestId('error-id')).toHaveTextContent('e-77');
    expect(screen.getByLabelText(/Username/)).toHaveValue('root');
    expect(screen.getByLabelText(/Password/)).toHaveValue('');
  });

  it('never follows a login "next" to another site', async () => {
    const user = userEvent.setup();
    renderApp('/login?next=//evil.test/x', { 'POST /api/auth/login': () => json(pair(CONSUMER)) });
    await user.type(await screen.findByLabelText(/Username/), 'carol');
    await user.type(screen.getByLabelText(/Password/), 'correct horse battery');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    await waitFor(() => expect(screen.getByTestId('location').textContent).toBe('/artifacts'));
  });

  it('shows a consumer no admin navigation and a forbidden page on admin URLs', async () => {
    signIn(CONSUMER);
    const { server } = renderApp('/admin/users', {});
    expect(await screen.findByTestId('forbidden')).toHaveTextContent('users:read');
    const nav = await openNav();
    expect(within(nav).getByRole('link', { name: 'Artifacts' })).toBeInTheDocument();
    for (const name of ['Users', 'API keys', 'Roles', 'Audit log', 'Registry', 'Edge routes'])
      expect(within(nav).queryByRole('link', { name })).toBeNull();
    // The forbidden page made no call to the admin API.
    expect(server.seen.some((s) => s.path.startsWith('/api/users'))).toBe(false);
    for (const path of ['/audit', '/admin/keys', '/admin/roles', '/edge', '/registry']) {
      expect(server.seen.some((s) => s.path.startsWith(`/api${path}`))).toBe(false);
    }
  });

  it('shows an admin every page in the navigation', async () => {
    signIn(ADMIN, 'root');
    renderApp('/artifacts', {});
    const nav = await openNav();
    for (const name of [
      'Artifacts',
      'Registry',
      'Audit log',
      'Users',
      'API keys',
      'Roles',
      'Edge routes',
      'Health',
    ])
      expect(within(nav).getByRole('link', { name })).toBeInTheDocument();
    expect(screen.getByTestId('whoami')).toHaveTextContent('root');
  });

  it('keeps typed filters through a session expiry and a new sign-in', async () => {
    const user = userEvent.setup();
    signIn(ADMIN, 'root');
    let expired = false;
    renderApp('/audit', {
      'GET /api/audit-logs': () =>
        expired ? problem(401, 'GW_ERR_AUTH_TOKEN_EXPIRED', 'expired') : json({ events: [] }),
      'POST /api/auth/refresh': () => problem(401, 'GW_ERR_AUTH_REFRESH_INVALID', 'revoked'),
      'POST /api/auth/login': () => {
        expired = false;
        return json(pair(ADMIN));
      },
    });
    await user.type(await screen.findByLabelText('Actor'), 'user:42');
    expired = true;
    await user.click(screen.getByRole('button', { name: 'Apply' }));
    await screen.findByText(/Your session has expired/);
    // The applied filter is in the URL, so it comes back with the sign-in too.
    expect(screen.getByTestId('location').textContent).toBe(
      '/login?next=%2Faudit%3Factor%3Duser%253A42&expired=1',
    );
    await user.type(screen.getByLabelText(/Username/), 'root');
    await user.type(screen.getByLabelText(/Password/), 'correct horse battery');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByLabelText('Actor')).toHaveValue('user:42');
  });

  it('tells the user when the server is down, with a retry', async () => {
    signIn(ADMIN, 'root');
    let down = true;
    const user = userEvent.setup();
    const { server } = renderApp('/artifacts', {
      'GET /api/artifacts': () => {
        if (down) throw new TypeError('Failed to fetch');
        return json({ items: [], total: 0 });
      },
    });
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent(/Cannot reach the Gatehouse server/);
    down = false;
    await user.click(within(alert).getByRole('button', { name: 'Retry' }));
    await screen.findByText('No artifacts match.');
    expect(server.seen.filter((s) => s.path.startsWith('/api/artifacts')).length).toBeGreaterThanOrEqual(2);
  });

  it('says the server is unreachable when a reload cannot read who is signed in, never "not allowed"', async () => {
    signIn(ADMIN, 'root');
    let down = true;
    const user = userEvent.setup();
    renderApp('/artifacts', {
      'GET /api/auth/me': () => {
        if (down) throw new TypeError('Failed to fetch');
        return json({ id: 'u9', name: 'root', bindings: [{ role: 'admin', namespace: '*' }] });
      },
    });
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent(/Cannot reach the Gatehouse server/);
    expect(screen.queryByTestId('forbidden')).toBeNull();
    expect(screen.getByRole('heading', { level: 1 })).toHaveTextContent('Cannot load your session');
    down = false;
    await user.click(within(alert).getByRole('button', { name: 'Retry' }));
    await screen.findByRole('heading', { name: 'Artifacts', level: 1 });
    expect(screen.getByTestId('whoami')).toHaveTextContent('root');
    expect(screen.getByTestId('location').textContent).toBe('/artifacts');
  });
});
