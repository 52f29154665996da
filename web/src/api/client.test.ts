import { describe, expect, it } from 'vitest';
import { fakeServer, json, problem, token } from '../test/fake-server.ts';
import { ApiClient, REFRESH_MARGIN_MS, withQuery } from './client.ts';
import { ApiError, CLIENT_CODES } from './problem.ts';

function setup(routes: Parameters<typeof fakeServer>[0], start = 1_000_000) {
  let now = start;
  const server = fakeServer(routes);
  const client = new ApiClient({ storage: sessionStorage, fetch: server.fetch, now: () => now });
  const events: string[] = [];
  client.onSession((e) => events.push(e));
  return { client, server, events, advance: (ms: number) => (now += ms) };
}

const pair = (n: number) => ({ accessToken: token({ sub: 'u1', n }), refreshToken: `r${n}`, expiresIn: 900 });

describe('ApiClient', () => {
  it('logs in, stores the tokens in sessionStorage and sends the bearer', async () => {
    const { client, server, events } = setup({
      'POST /api/auth/login': () => json(pair(1)),
      'GET /api/artifacts': () => json({ items: [], total: 0 }),
    });
    await client.login('alice', 'correct horse battery');
    expect(server.seen[0]?.body).toEqual({ username: 'alice', password: 'correct horse battery' });
    expect(events).toEqual(['signed-in']);
    expect(sessionStorage.getItem('gatehouse.session')).toContain('r1');
    await client.get('/api/artifacts', { limit: 10 });
    expect(server.seen[1]?.path).toBe('/api/artifacts?limit=10');
    expect(server.seen[1]?.headers.get('authorization')).toBe(`Bearer ${pair(1).accessToken}`);
  });

  it('refreshes silently before the access token expires', async () => {
    let refreshes = 0;
    const { client, server, advance } = setup({
      'POST /api/auth/login': () => json(pair(1)),
      'POST /api/auth/refresh': () => json(pair(2 + refreshes++)),
      'GET /api/users': () => json({ users: [] }),
    });
    await client.login('alice', 'pw-pw-pw-pw-pw');
    advance(900_000 - REFRESH_MARGIN_MS + 1);
    // Two concurrent requests share one refresh.
    await Promise.all([client.get('/api/users'), client.get('/api/users')]);
    expect(refreshes).toBe(1);
    expect(server.seen.find((s) => s.path === '/api/auth/refresh')?.body).toEqual({ refreshToken: 'r1' });
    const calls = server.seen.filter((s) => s.path === '/api/users');
    expect(calls.every((c) => c.headers.get('authorization') === `Bearer ${pair(2).accessToken}`)).toBe(true);
  });

  it('retries once with a refreshed token after a 401', async () => {
    let first = true;
    const { client } = setup({
      'POST /api/auth/login': () => json(pair(1)),
      'POST /api/auth/refresh': () => json(pair(2)),
      'GET /api/keys': (r) => {
        if (first) {
          first = false;
          return problem(401, 'GW_ERR_AUTH_TOKEN_EXPIRED', 'The access token has expired');
        }
        return r.headers.get('authorization')?.includes(pair(2).accessToken) === true
          ? json({ keys: [] })
          : problem(401, 'X', 'no');
      },
    });
    await client.login('a', 'b');
    await expect(client.get('/api/keys')).resolves.toEqual({ keys: [] });
  });

  it('ends the session when the refresh token is refused, and says so', async () => {
    const { client, events } = setup({
      'POST /api/auth/login': () => json(pair(1)),
      'POST /api/auth/refresh': () => problem(401, 'GW_ERR_AUTH_REFRESH_INVALID', 'Refresh token revoked'),
      'GET /api/keys': () => problem(401, 'GW_ERR_AUTH_TOKEN_EXPIRED', 'expired'),
    });
    await client.login('a', 'b');
    const error = await client.get('/api/keys').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).code).toBe(CLIENT_CODES.sessionExpired);
    expect(events).toEqual(['signed-in', 'expired']);
    expect(client.signedIn).toBe(false);
    expect(sessionStorage.getItem('gatehouse.session')).toBeNull();
  });

  it('keeps the session when the server is down during a refresh', async () => {
    const { client, advance } = setup({ 'POST /api/auth/login': () => json(pair(1)) });
    await client.login('a', 'b');
    const down = new ApiClient({
      storage: sessionStorage,
      fetch: () => Promise.reject(new TypeError('Failed to fetch')),
      now: () => 1_000_000 + 900_000,
    });
    advance(0);
    const error = (await down.get('/api/users').catch((e: unknown) => e)) as ApiError;
    expect(error.code).toBe(CLIENT_CODES.network);
    expect(error.message).toMatch(/Cannot reach the Gatehouse server/);
    expect(down.signedIn).toBe(true);
  });

  it('turns problem+json into an ApiError with code, detail and errorId', async () => {
    const { client } = setup({
      'POST /api/auth/login': () => json(pair(1)),
      'GET /api/audit-logs': () =>
        problem(403, 'GW_ERR_RBAC_DENIED', 'Reading "audit" is not allowed', 'e-42'),
    });
    await client.login('a', 'b');
    const error = (await client.get('/api/audit-logs').catch((e: unknown) => e)) as ApiError;
    expect([error.status, error.code, error.message, error.errorId]).toEqual([
      403,
      'GW_ERR_RBAC_DENIED',
      'Reading "audit" is not allowed',
      'e-42',
    ]);
  });

  it('refuses a login answer without tokens and stays signed out', async () => {
    const { client } = setup({ 'POST /api/auth/login': () => json({ ok: true }) });
    await expect(client.login('a', 'b')).rejects.toThrow(/no tokens/);
    expect(client.signedIn).toBe(false);
  });

  it('logs out: forgets the tokens first, then revokes the refresh token', async () => {
    const { client, server, events } = setup({
      'POST /api/auth/login': () => json(pair(1)),
      'POST /api/auth/logout': () => new Response(null, { status: 204 }),
    });
    await client.login('a', 'b');
    await client.logout();
    expect(client.signedIn).toBe(false);
    expect(server.seen.at(-1)?.body).toEqual({ refreshToken: 'r1' });
    expect(events).toEqual(['signed-in', 'signed-out']);
  });
});

describe('withQuery', () => {
  it('skips empty values and encodes the rest', () => {
    expect(withQuery('/a', { x: '', y: undefined, z: 'a b&c', n: 0 })).toBe('/a?z=a+b%26c&n=0');
    expect(withQuery('/a', {})).toBe('/a');
  });
});
