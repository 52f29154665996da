import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { json, problem } from '../test/fake-server.ts';
import { artifact, detailRoutes } from '../test/artifacts.ts';
import { renderApp, signIn } from '../test/render.tsx';
import { toLocalInput } from './audit.tsx';
import { SAMPLE_MS } from './health.tsx';
import { routeBody } from './edge.tsx';
import { localZoneName } from '../lib/format.ts';

const ADMIN = [{ role: 'admin', ns: '*' }];
const text = (body: string) =>
  new Response(body, { headers: { 'content-type': 'text/plain; version=0.0.4' } });

afterEach(() => {
  vi.restoreAllMocks();
});

describe('users page', () => {
  const users = [
    {
      id: 'u1',
      username: 'root',
      roles: [{ role: 'admin', namespace: '*' }],
      createdAt: '2026-01-01T00:00:00Z',
    },
    { id: 'u2', username: 'alice', roles: [{ role: 'consumer', namespace: 'team' }] },
  ];

  it('creates a user with parsed bindings, and keeps what was typed when the server refuses', async () => {
    signIn(ADMIN, 'root');
    const user = userEvent.setup();
    let refuse = true;
    const { server } = renderApp('/admin/users', {
      'GET /api/users': () => json({ users }),
      'POST /api/users': () =>
        refuse
          ? problem(409, 'GW_ERR_AUTH_USER_EXISTS', 'User "bob" already exists', 'e-409')
          : json({ id: 'u3' }, 201),
    });
    const form = await screen.findByRole('form', { name: 'Create user' });
    await user.type(within(form).getByLabelText(/^Username/), 'bob');
    await user.type(within(form).getByLabelText(/^Password/), 'a-long-password-1');
    const bindings = within(form).getByLabelText('Role bindings');
    await user.clear(bindings);
    await user.type(bindings, 'superuser:*');
    expect(within(form).getByText('Unknown role: superuser:*')).toBeInTheDocument();
    // Sent, the unknown entry would be dropped and bob created without any role.
    expect(within(form).getByRole('button', { name: 'Create user' })).toBeDisabled();
    await user.clear(bindings);
    await user.type(bindings, 'publisher:team, consumer:*');
    await user.click(within(form).getByRole('button', { name: 'Create user' }));
    const alert = await within(form).findByRole('alert');
    expect(alert).toHaveTextContent('User "bob" already exists');
    expect(within(alert).getByTestId('error-id')).toHaveTextContent('e-409');
    // Nothing typed is lost, the password included.
    expect(within(form).getByLabelText(/^Username/)).toHaveValue('bob');
    expect(within(form).getByLabelText(/^Password/)).toHaveValue('a-long-password-1');
    refuse = false;
    await user.click(within(form).getByRole('button', { name: 'Create user' }));
    await waitFor(() => expect(within(form).getByLabelText(/^Username/)).toHaveValue(''));
    const posts = server.seen.filter((s) => s.method === 'POST');
    expect(posts.at(-1)?.body).toEqual({
      username: 'bob',
      password: 'a-long-password-1',
      roles: [
        { role: 'publisher', namespace: 'team' },
        { role: 'consumer', namespace: '*' },
      ],
    });
    // The password never lands in the stored draft.
    expect(JSON.stringify({ ...sessionStorage, ...localStorage })).not.toContain('a-long-password-1');
  });

  it('saves roles, deletes only after confirmation, and never offers to delete oneself', async () => {
    signIn(ADMIN, 'root');
    const user = userEvent.setup();
    const { server } = renderApp('/admin/users', {
      'GET /api/users': () => json({ users }),
      'PATCH /api/users/u2': () => json({ ok: true }),
      'DELETE /api/users/u2': () => new Response(null, { status: 204 }),
    });
    const table = await screen.findByRole('table', { name: 'Users' });
    expect(await within(table).findByRole('button', { name: 'Delete user root' })).toBeDisabled();
    const roles = within(table).getByLabelText('Bindings of alice');
    await user.clear(roles);
    // A typo must not be saved as "no roles": the button waits for a known role.
    await user.type(roles, 'auditr:*');
    expect(within(table).getByRole('button', { name: 'Save roles of alice' })).toBeDisabled();
    await user.clear(roles);
    await user.type(roles, 'auditor:*');
    await user.click(within(table).getByRole('button', { name: 'Save roles of alice' }));
    await waitFor(() =>
      expect(server.seen.find((s) => s.method === 'PATCH')?.body).toEqual({
        roles: [{ role: 'auditor', namespace: '*' }],
      }),
    );
    const confirm = vi.spyOn(window, 'confirm').mockReturnValueOnce(false).mockReturnValueOnce(true);
    await user.click(within(table).getByRole('button', { name: 'Delete user alice' }));
    expect(server.seen.some((s) => s.method === 'DELETE')).toBe(false);
    await user.click(within(table).getByRole('button', { name: 'Delete user alice' }));
    await waitFor(() =>
      expect(server.seen.some((s) => s.method === 'DELETE' && s.path === '/api/users/u2')).toBe(true),
    );
    expect(confirm).toHaveBeenCalledTimes(2);
  });
});

describe('API keys page', () => {
  it('creates a key, shows its secret once, and revokes after confirmation', async () => {
    signIn(ADMIN, 'root');
    const user = userEvent.setup();
    const keys = [
      { id: 'k1', name: 'ci', bindings: [{ role: 'publisher', namespace: 'team' }], expiresAt: null },
    ];
    const { server } = renderApp('/admin/keys', {
      'GET /api/keys': () => json({ keys }),
      'POST /api/keys': () => json({ id: 'k2', secret: 'ghk_secret_shown_once' }, 201),
      'DELETE /api/keys/k1': () => new Response(null, { status: 204 }),
    });
    const form = await screen.findByRole('form', { name: 'Create API key' });
    await user.type(within(form).getByLabelText(/^Name/), 'deploy');
    await user.type(within(form).getByLabelText('Allowed networks'), '10.0.0.0/8, 192.168.1.0/24');
    const bindings = within(form).getByLabelText('Role bindings');
    await user.type(bindings, ', publsher:team');
    expect(within(form).getByRole('button', { name: 'Create key' })).toBeDisabled();
    await user.clear(bindings);
    await user.type(bindings, 'consumer:*');
    // An expiry that is no number of days must not make a key that never expires.
    const expiry = within(form).getByLabelText('Expires in (days)');
    for (const wrong of ['abc', '-5', '1e9']) {
      await user.clear(expiry);
      await user.type(expiry, wrong);
      expect(within(form).getByRole('button', { name: 'Create key' })).toBeDisabled();
      expect(within(form).getByText('A positive number of days, or empty for never')).toBeInTheDocument();
    }
    await user.clear(expiry);
    await user.type(expiry, '90');
    const before = Date.now();
    await user.click(within(form).getByRole('button', { name: 'Create key' }));
    expect(await screen.findByTestId('new-key')).toHaveTextContent('ghk_secret_shown_once');
    const body = server.seen.find((s) => s.method === 'POST')?.body as Record<string, unknown>;
    expect(body['name']).toBe('deploy');
    expect(body['bindings']).toEqual([{ role: 'consumer', namespace: '*' }]);
    expect(body['allowedCidrs']).toEqual(['10.0.0.0/8', '192.168.1.0/24']);
    const expires = Date.parse(String(body['expiresAt']));
    expect(expires - before).toBeGreaterThanOrEqual(90 * 86_400_000 - 1000);
    expect(expires - before).toBeLessThan(90 * 86_400_000 + 60_000);
    // Dismissed, the secret is gone from the page for good.
    await user.click(
      within(screen.getByTestId('new-key').closest('[role="alert"]') as HTMLElement).getByRole('button', {
        name: 'Close',
      }),
    );
    expect(screen.queryByTestId('new-key')).toBeNull();

    const table = screen.getByRole('table', { name: 'API keys' });
    expect(await within(table).findByText('never')).toBeInTheDocument();
    vi.spyOn(window, 'confirm').mockReturnValue(true);
    await user.click(within(table).getByRole('button', { name: 'Revoke API key ci' }));
    await waitFor(() =>
      expect(server.seen.some((s) => s.method === 'DELETE' && s.path === '/api/keys/k1')).toBe(true),
    );
  });
});

describe('registry page', () => {
  it('runs the policy on a package and shows each rule, refuses a malformed spec, and invalidates the cache', async () => {
    signIn(ADMIN, 'root');
    const user = userEvent.setup();
    let release = () => {};
    const looked = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { server } = renderApp('/registry', {
      'GET /api/audit-logs': () =>
        json({
          events: [
            {
              seq: 3,
              time: '2026-01-01T00:00:00Z',
              actor: 'user:1',
              action: 'registry.decision',
              resource: 'npm:left-pad@1.3.0',
              decision: 'deny',
              reason: 'Version is younger than 7 days',
              details: { rule: 'min-age' },
            },
          ],
        }),
      'GET /metrics': () =>
        text(
          [
            '# TYPE gatehouse_registry_cache_total counter',
            'gatehouse_registry_cache_total{registry="npm",kind="metadata",result="hit"} 30',
            'gatehouse_registry_cache_total{registry="npm",kind="metadata",result="miss"} 10',
            '',
          ].join('\n'),
        ),
      'POST /api/registry/policy/test': async () => {
        await looked;
        return json({
          found: true,
          decision: {
            allowed: false,
            outcome: 'deny',
            reason: 'Denied by "min-age"',
            policyVersion: 'p1',
            results: [
              { ruleId: 'min-age', ruleName: 'Minimum age', outcome: 'deny', reason: 'Published 2 days ago' },
              { ruleId: 'vulns', ruleName: 'Vulnerabilities', outcome: 'allow', reason: 'No known advisory' },
            ],
          },
        });
      },
      'DELETE /api/registry/cache': () => json({ removed: 4 }),
    });
    const decisions = await screen.findByRole('table', { name: 'Recent decisions' });
    expect(await within(decisions).findByText('Version is younger than 7 days')).toBeInTheDocument();

    const lookup = screen.getByRole('form', { name: 'Package lookup' });
    const spec = within(lookup).getByLabelText('Package (name@version)');
    await user.type(spec, 'left-pad');
    expect(within(lookup).getByText(/Write it as name@version/)).toBeInTheDocument();
    expect(within(lookup).getByRole('button', { name: 'Run policy' })).toBeDisabled();
    await user.type(spec, '@1.3.0');
    await user.click(within(lookup).getByRole('button', { name: 'Run policy' }));
    // While the uplink is asked, the button waits, and Enter in the field sends no second lookup.
    expect(within(lookup).getByRole('button', { name: 'Run policy' })).toBeDisabled();
    await user.type(spec, '{Enter}');
    release();
    const answer = await screen.findByTestId('policy-answer');
    expect(answer).toHaveTextContent('Denied by "min-age"');
    const rules = within(answer).getByRole('table', { name: 'Rule results' });
    expect(within(rules).getByText('Published 2 days ago')).toBeInTheDocument();
    expect(within(rules).getByText('No known advisory')).toBeInTheDocument();
    expect(server.seen.filter((s) => s.path === '/api/registry/policy/test')).toHaveLength(1);
    expect(server.seen.find((s) => s.path === '/api/registry/policy/test')?.body).toEqual({
      ecosystem: 'npm',
      name: 'left-pad',
      version: '1.3.0',
    });

    const cache = await screen.findByRole('table', { name: 'Cache statistics' });
    expect(await within(cache).findByText('75%')).toBeInTheDocument();
    const invalidate = screen.getByRole('form', { name: 'Invalidate cache' });
    await user.type(within(invalidate).getByLabelText('Package name (empty: all)'), 'left-pad');
    await user.click(within(invalidate).getByRole('button', { name: 'Invalidate' }));
    expect(await within(invalidate).findByRole('status')).toHaveTextContent('Removed 4 cached entries.');
    expect(server.seen.find((s) => s.method === 'DELETE')?.path).toBe(
      '/api/registry/cache?ecosystem=npm&name=left-pad',
    );
  });
});

describe('health page', () => {
  it('shows every check, and the failing one when the gateway answers 503', async () => {
    signIn(ADMIN, 'root');
    renderApp('/health', {
      'GET /api/health': () =>
        json(
          {
            status: 'unavailable',
            checks: {
              'door:artifacts': { ok: true, detail: 'blob store fs, scanner gatehouse', latencyMs: 3 },
              database: { ok: false, detail: 'connection refused' },
            },
          },
          503,
        ),
      'GET /metrics': () =>
        text(
          'gatehouse_http_requests_total{method="GET",route="/",status="200"} 5\ngatehouse_process_resident_memory_bytes 104857600\n',
        ),
    });
    const table = await screen.findByRole('table', { name: 'Readiness checks' });
    const database = (await within(table).findByText('database')).closest('tr') as HTMLElement;
    expect(within(database).getByText('not ready')).toBeInTheDocument();
    expect(within(database).getByText('connection refused')).toBeInTheDocument();
    const artifacts = within(table).getByText('door:artifacts').closest('tr') as HTMLElement;
    expect(within(artifacts).getByText('blob store fs, scanner gatehouse · 3 ms')).toBeInTheDocument();
    expect(screen.getByRole('heading', { name: /Readiness/ })).toHaveTextContent('not ready');
  });
  it('marks the last readiness result stale, with the time of that check, once the server stops answering', async () => {
    signIn(ADMIN, 'root');
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      let down = false;
      const unreachable = () => Promise.reject(new TypeError('Failed to fetch'));
      renderApp('/health', {
        'GET /api/health': () =>
          down ? unreachable() : json({ status: 'ok', checks: { database: { ok: true, latencyMs: 2 } } }),
        'GET /metrics': () => (down ? unreachable() : text('gatehouse_http_requests_in_flight 1\n')),
      });
      const table = await screen.findByRole('table', { name: 'Readiness checks' });
      const row = (await within(table).findByText('database')).closest('tr') as HTMLElement;
      expect(within(row).getByText('ready')).toBeInTheDocument();
      const checked = await screen.findByTestId('readiness-checked');
      const at = checked.textContent?.replace('Last successful check: ', '') ?? '';
      expect(at).toMatch(/\d/);
      down = true;
      vi.advanceTimersByTime(SAMPLE_MS);
      expect(await screen.findByRole('alert')).toBeInTheDocument();
      // The green of the last answer is not passed off as the present.
      expect(await screen.findByTestId('readiness-stale')).toHaveTextContent(at);
      expect(within(row).queryByText('ready')).toBeNull();
      expect(within(row).getByText('stale (was ready)')).toBeInTheDocument();
      expect(screen.getByRole('heading', { name: /Readiness/ })).toHaveTextContent('stale (was ready)');
      expect(screen.queryByTestId('readiness-checked')).toBeNull();
      down = false;
      vi.advanceTimersByTime(SAMPLE_MS);
      await waitFor(() => expect(screen.queryByTestId('readiness-stale')).toBeNull());
      expect(within(row).getByText('ready')).toBeInTheDocument();
      expect(screen.queryByRole('alert')).toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('one request per submit', () => {
  /** A server answer held until the test lets it go. */
  const held = (answer: () => Response) => {
    let open = () => {};
    const opened = new Promise<void>((resolve) => {
      open = resolve;
    });
    const handler = async () => {
      await opened;
      return answer();
    };
    return { handler, open };
  };
  /** While a request runs, the button waits and shows progress, and its form says it is busy. */
  const inFlight = (button: HTMLElement, form?: HTMLElement) => {
    expect(button).toBeDisabled();
    expect(within(button).getByRole('progressbar')).toBeInTheDocument();
    if (form !== undefined) expect(form).toHaveAttribute('aria-busy', 'true');
  };
  const settled = (button: HTMLElement, form?: HTMLElement) => {
    expect(button).toBeEnabled();
    expect(within(button).queryByRole('progressbar')).toBeNull();
    if (form !== undefined) expect(form).toHaveAttribute('aria-busy', 'false');
  };
  /** A double click on the button (and, in a form, a second Enter) while the answer is held; then the answer. */
  const hammer = (button: HTMLElement, gate: { open(): void }, form?: HTMLElement) => {
    fireEvent.click(button);
    fireEvent.click(button);
    if (form !== undefined) fireEvent.submit(form);
    inFlight(button, form);
    gate.open();
  };
  const submitOf = (form: HTMLElement, name: string) => within(form).getByRole('button', { name });
  const refused = (detail: string) => () => problem(409, 'GW_ERR_CONFLICT', detail);
  const noContent = () => new Response(null, { status: 204 });

  it('creates one user and saves roles once on a double click or a second Enter, keeping the form on error', async () => {
    signIn(ADMIN, 'root');
    const user = userEvent.setup();
    const post = held(refused('User "bob" already exists'));
    const patch = held(() => json({ ok: true }));
    const { server } = renderApp('/admin/users', {
      'GET /api/users': () =>
        json({ users: [{ id: 'u2', username: 'alice', roles: [{ role: 'consumer', namespace: 'team' }] }] }),
      'POST /api/users': post.handler,
      'PATCH /api/users/u2': patch.handler,
    });
    const form = await screen.findByRole('form', { name: 'Create user' });
    await user.type(within(form).getByLabelText(/^Username/), 'bob');
    await user.type(within(form).getByLabelText(/^Password/), 'a-long-password-1');
    hammer(submitOf(form, 'Create user'), post, form);
    expect(await within(form).findByRole('alert')).toHaveTextContent('User "bob" already exists');
    settled(submitOf(form, 'Create user'), form);
    expect(within(form).getByLabelText(/^Username/)).toHaveValue('bob');
    expect(within(form).getByLabelText(/^Password/)).toHaveValue('a-long-password-1');
    expect(server.seen.filter((s) => s.method === 'POST')).toHaveLength(1);

    const table = screen.getByRole('table', { name: 'Users' });
    const save = await within(table).findByRole('button', { name: 'Save roles of alice' });
    hammer(save, patch);
    expect(within(table).getByRole('button', { name: 'Delete user alice' })).toBeDisabled();
    await waitFor(() => settled(save));
    expect(server.seen.filter((s) => s.method === 'PATCH')).toHaveLength(1);
  });

  it('creates one API key and revokes once on a double click', async () => {
    signIn(ADMIN, 'root');
    const user = userEvent.setup();
    const post = held(() => json({ id: 'k2', secret: 'ghk_once' }, 201));
    const remove = held(noContent);
    vi.spyOn(window, 'confirm').mockReturnValue(true);
    const { server } = renderApp('/admin/keys', {
      'GET /api/keys': () => json({ keys: [{ id: 'k1', name: 'ci', bindings: [], expiresAt: null }] }),
      'POST /api/keys': post.handler,
      'DELETE /api/keys/k1': remove.handler,
    });
    const form = await screen.findByRole('form', { name: 'Create API key' });
    await user.type(within(form).getByLabelText(/^Name/), 'deploy');
    hammer(submitOf(form, 'Create key'), post, form);
    expect(await screen.findByTestId('new-key')).toHaveTextContent('ghk_once');
    settled(submitOf(form, 'Create key'), form);
    expect(server.seen.filter((s) => s.method === 'POST')).toHaveLength(1);

    const table = screen.getByRole('table', { name: 'API keys' });
    const revoke = await within(table).findByRole('button', { name: 'Revoke API key ci' });
    hammer(revoke, remove);
    await waitFor(() => settled(revoke));
    expect(server.seen.filter((s) => s.method === 'DELETE')).toHaveLength(1);
  });

  it('invalidates the registry cache once on a double click', async () => {
    signIn(ADMIN, 'root');
    const invalidate = held(() => json({ removed: 2 }));
    const { server } = renderApp('/registry', {
      'GET /api/audit-logs': () => json({ events: [] }),
      'GET /metrics': () => text(''),
      'DELETE /api/registry/cache': invalidate.handler,
    });
    const form = await screen.findByRole('form', { name: 'Invalidate cache' });
    hammer(submitOf(form, 'Invalidate'), invalidate, form);
    expect(await within(form).findByRole('status')).toHaveTextContent('Removed 2 cached entries.');
    settled(submitOf(form, 'Invalidate'), form);
    expect(server.seen.filter((s) => s.method === 'DELETE')).toHaveLength(1);
  });

  it('overrides a verdict and asks for a scan once on a double click, keeping the reason on error', async () => {
    signIn(ADMIN, 'root');
    const user = userEvent.setup();
    const a = { ...artifact(2), status: 'blocked' };
    const verdict = held(refused('The verdict changed meanwhile'));
    const scan = held(() => json({ ok: true }, 202));
    const { server } = renderApp(`/artifacts/${a.id}`, {
      [`GET /api/artifacts/${a.id}`]: () => json(a),
      ...detailRoutes(a),
      [`POST /api/artifacts/${a.id}/verdict`]: verdict.handler,
      [`POST /api/artifacts/${a.id}/scan`]: scan.handler,
    });
    const form = await screen.findByRole('form', { name: 'Override verdict' });
    await user.type(within(form).getByLabelText(/^Reason/), 'false positive');
    hammer(submitOf(form, 'Override verdict'), verdict, form);
    expect(await within(form).findByRole('alert')).toHaveTextContent('The verdict changed meanwhile');
    settled(submitOf(form, 'Override verdict'), form);
    expect(within(form).getByLabelText(/^Reason/)).toHaveValue('false positive');
    expect(server.seen.filter((s) => s.path.endsWith('/verdict'))).toHaveLength(1);

    const again = screen.getByRole('button', { name: 'Scan again' });
    hammer(again, scan);
    await waitFor(() => settled(again));
    expect(server.seen.filter((s) => s.path.endsWith('/scan'))).toHaveLength(1);
  });

  it('exports the audit log once on a double click', async () => {
    signIn(ADMIN, 'root');
    const walk = held(() => json({ events: [] }));
    vi.spyOn(URL, 'createObjectURL').mockReturnValue('blob:audit');
    vi.spyOn(URL, 'revokeObjectURL').mockImplementation(() => undefined);
    vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(() => undefined);
    const { server } = renderApp('/audit', {
      'GET /api/audit-logs': (r) => (r.path.includes('limit=1000') ? walk.handler() : json({ events: [] })),
    });
    const exportButton = await screen.findByRole('button', { name: 'Export JSON lines' });
    hammer(exportButton, walk);
    expect(await screen.findByText('Exported 0 events.')).toBeInTheDocument();
    settled(exportButton);
    expect(server.seen.filter((s) => s.path.includes('limit=1000'))).toHaveLength(1);
  });

  it('adds one edge route and removes once on a double click', async () => {
    signIn(ADMIN, 'root');
    const user = userEvent.setup();
    const add = held(() => json({ id: 'r1' }, 201));
    const remove = held(noContent);
    vi.spyOn(window, 'confirm').mockReturnValue(true);
    const { server } = renderApp('/edge', {
      'GET /api/edge/routes': () =>
        json({
          routes: [{ id: 'r0', listener: 'default', host: 'a.test', mode: 'l4', backend: '127.0.0.1:1' }],
        }),
      'GET /api/edge/policies': () => json({ policies: [] }),
      'POST /api/edge/routes': add.handler,
      'DELETE /api/edge/routes/r0': remove.handler,
    });
    const form = await screen.findByRole('form', { name: 'Add route' });
    await user.type(within(form).getByLabelText(/^Id/), 'r1');
    await user.type(within(form).getByLabelText(/^Host/), 'app.test');
    await user.type(within(form).getByLabelText(/^Backend host:port/), '127.0.0.1:8080');
    hammer(submitOf(form, 'Add'), add, form);
    await waitFor(() => settled(submitOf(form, 'Add'), form));
    expect(server.seen.filter((s) => s.method === 'POST')).toHaveLength(1);

    const removeRoute = screen.getByRole('button', { name: 'Remove route r0' });
    hammer(removeRoute, remove);
    await waitFor(() => settled(removeRoute));
    expect(server.seen.filter((s) => s.method === 'DELETE')).toHaveLength(1);
  });
});

describe('edge route body', () => {
  it('sends an L4 route its coordinates only and an L7 route its protocol, certificate and key', () => {
    const draft = {
      id: 'r1',
      listener: 'default',
      host: 'app.console.test',
      mode: 'l4',
      backend: '127.0.0.1:8080',
      backendProtocol: 'h2',
      certFile: '/etc/gh/app.pem',
      keyFile: '/etc/gh/app.key',
      backendCaFile: '',
    };
    expect(routeBody(draft)).toEqual({
      id: 'r1',
      listener: 'default',
      host: 'app.console.test',
      mode: 'l4',
      backend: '127.0.0.1:8080',
    });
    expect(routeBody({ ...draft, mode: 'l7' })).toEqual({
      id: 'r1',
      listener: 'default',
      host: 'app.console.test',
      mode: 'l7',
      backend: '127.0.0.1:8080',
      backendProtocol: 'h2',
      certFile: '/etc/gh/app.pem',
      keyFile: '/etc/gh/app.key',
    });
  });
});

describe('audit log page', () => {
  const event = (seq: number) => ({
    seq,
    time: '2026-01-01T00:00:00Z',
    actor: 'user:alice',
    action: 'artifacts.download',
    resource: `artifact:team/app@${seq}`,
    decision: 'deny',
    reason: 'quarantined',
    hash: `h${seq}`,
    prevHash: `h${seq - 1}`,
  });

  it('filters by actor, action, resource, decision and time range, pages by cursor, and exports JSON lines', async () => {
    signIn(ADMIN, 'root');
    const user = userEvent.setup();
    const saved: string[] = [];
    const blobs: Blob[] = [];
    vi.spyOn(URL, 'createObjectURL').mockImplementation((b) => {
      blobs.push(b as Blob);
      return 'blob:audit';
    });
    vi.spyOn(URL, 'revokeObjectURL').mockImplementation(() => undefined);
    vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(function (this: HTMLAnchorElement) {
      saved.push(this.download);
    });
    const { server } = renderApp('/audit', {
      'GET /api/audit-logs': (r) => {
        const q = new URL(r.path, 'http://console.test').searchParams;
        if (q.get('limit') === '1000')
          return q.get('cursor') === null
            ? json({ events: [event(9), event(8)], nextCursor: 'c-export' })
            : json({ events: [event(7)] });
        return q.get('cursor') === 'c2'
          ? json({ events: [event(3)] })
          : json({ events: [event(9), event(8)], nextCursor: 'c2' });
      },
    });
    const table = await screen.findByRole('table', { name: 'Audit events' });
    await within(table).findAllByText('artifacts.download');
    const filters = screen.getByRole('form', { name: 'Audit filters' });
    await user.type(within(filters).getByLabelText('Actor'), 'user:alice');
    await user.type(within(filters).getByLabelText('Action'), 'artifacts.download');
    await user.type(within(filters).getByLabelText('Resource (prefix)'), 'artifact:team/');
    // The picker's time is the browser's local time, and its label names that zone.
    await user.type(within(filters).getByLabelText(`From (${localZoneName()})`), '2026-01-01T10:00');
    await user.click(within(filters).getByRole('button', { name: 'Apply' }));
    await waitFor(() => {
      const q = new URL(server.seen.at(-1)?.path ?? '', 'http://console.test').searchParams;
      expect(q.get('actor')).toBe('user:alice');
      expect(q.get('action')).toBe('artifacts.download');
      expect(q.get('resource')).toBe('artifact:team/');
      // A local time from the picker goes out as an instant.
      expect(q.get('from')).toBe(new Date('2026-01-01T10:00').toISOString());
      expect(q.get('cursor')).toBeNull();
    });

    await user.click(screen.getByRole('button', { name: 'Older' }));
    await within(table).findByText('artifact:team/app@3');
    expect(new URL(server.seen.at(-1)?.path ?? '', 'http://console.test').searchParams.get('cursor')).toBe(
      'c2',
    );
    expect(screen.getByRole('button', { name: 'Older' })).toBeDisabled();
    await user.click(screen.getByRole('button', { name: 'Newer' }));
    await within(table).findByText('artifact:team/app@9');

    await user.click(within(filters).getByRole('button', { name: 'Export JSON lines' }));
    expect(await screen.findByText('Exported 3 events.')).toBeInTheDocument();
    expect(saved).toEqual([expect.stringMatching(/^gatehouse-audit-.*\.jsonl$/)]);
    const lines = (await blobs[0]?.text())?.trimEnd().split('\n') ?? [];
    expect(lines.map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual([9, 8, 7]);
    const exports = server.seen.filter((s) => s.path.includes('limit=1000'));
    expect(exports).toHaveLength(2);
    for (const e of exports) expect(e.path).toContain('actor=user%3Aalice');
  });

  it('keeps the trail of newer pages in the URL, so "Newer" on a reloaded or shared older page goes one page back', async () => {
    signIn(ADMIN, 'root');
    const user = userEvent.setup();
    const pages: Record<string, { events: ReturnType<typeof event>[]; nextCursor?: string }> = {
      '': { events: [event(9)], nextCursor: 'c8' },
      c8: { events: [event(8)], nextCursor: 'c7' },
      c7: { events: [event(7)], nextCursor: 'c6' },
      c6: { events: [event(6)] },
    };
    const routes = {
      'GET /api/audit-logs': (r: { path: string }) =>
        json(pages[new URL(r.path, 'http://x').searchParams.get('cursor') ?? ''] ?? { events: [] }),
    };
    const first = renderApp('/audit?actor=user%3Aalice', routes);
    const shown = async (seq: number) =>
      within(await screen.findByRole('table', { name: 'Audit events' })).findByText(
        `artifact:team/app@${seq}`,
      );
    await shown(9);
    for (const seq of [8, 7, 6]) {
      await user.click(screen.getByRole('button', { name: 'Older' }));
      await shown(seq);
    }
    const link = screen.getByTestId('location').textContent ?? '';
    const query = new URL(link, 'http://x').searchParams;
    expect(query.get('cursor')).toBe('c6');
    expect(query.getAll('newer')).toEqual(['', 'c8', 'c7']);
    // The same link opened cold (a reload, a colleague): Newer walks back one page at a time.
    first.unmount();
    const second = renderApp(link, routes);
    await shown(6);
    for (const seq of [7, 8, 9]) {
      await user.click(screen.getByRole('button', { name: 'Newer' }));
      await shown(seq);
    }
    expect(screen.getByRole('button', { name: 'Newer' })).toBeDisabled();
    expect(screen.getByTestId('location').textContent).toBe('/audit?actor=user%3Aalice');
    const cursors = second.server.seen
      .filter((s) => s.path.startsWith('/api/audit-logs?'))
      .map((s) => new URL(s.path, 'http://x').searchParams.get('cursor'));
    expect(cursors).toEqual(['c6', 'c7', 'c8', null]);
  });

  it('keeps the applied filters, page size and page in the URL, so a reload or a shared link shows the same events', async () => {
    signIn(ADMIN, 'root');
    const user = userEvent.setup();
    const from = '2026-01-01T09:30:00.000Z';
    const link = `/audit?actor=user%3Aalice&decision=deny&from=${encodeURIComponent(from)}&limit=25&cursor=c2`;
    const first = renderApp(link, { 'GET /api/audit-logs': () => json({ events: [] }) });
    await waitFor(() =>
      expect(first.server.seen.some((s) => s.path.startsWith('/api/audit-logs?'))).toBe(true),
    );
    const sent = (at: number) =>
      new URL(
        first.server.seen.filter((s) => s.path.startsWith('/api/audit-logs?')).at(at)?.path ?? '',
        'http://x',
      ).searchParams;
    expect(Object.fromEntries(sent(0))).toEqual({
      actor: 'user:alice',
      decision: 'deny',
      from,
      limit: '25',
      cursor: 'c2',
    });
    const filters = screen.getByRole('form', { name: 'Audit filters' });
    await waitFor(() => expect(within(filters).getByLabelText('Actor')).toHaveValue('user:alice'));
    expect(within(filters).getByLabelText(/^From/)).toHaveValue(toLocalInput(from));
    // Straight to an older page, with no trail to go back along, the button offers the newest page
    // of the same filters under that name, not a "Newer" that would skip the pages between.
    expect(screen.queryByRole('button', { name: 'Newer' })).toBeNull();
    await user.click(screen.getByRole('button', { name: 'Newest' }));
    await waitFor(() => expect(sent(-1).get('cursor')).toBeNull());
    expect(sent(-1).get('actor')).toBe('user:alice');
    await user.type(within(filters).getByLabelText('Action'), 'auth.login');
    await user.click(within(filters).getByRole('button', { name: 'Apply' }));
    await waitFor(() => expect(sent(-1).get('action')).toBe('auth.login'));
    const location = screen.getByTestId('location').textContent ?? '';
    expect(Object.fromEntries(new URL(location, 'http://x').searchParams)).toEqual({
      actor: 'user:alice',
      action: 'auth.login',
      decision: 'deny',
      from,
      limit: '25',
    });
    // The same link in a fresh console (its stored draft gone) shows the same filters.
    first.unmount();
    sessionStorage.removeItem('gatehouse.draft.audit.filters');
    const second = renderApp(location, { 'GET /api/audit-logs': () => json({ events: [] }) });
    const again = await screen.findByRole('form', { name: 'Audit filters' });
    await waitFor(() => expect(within(again).getByLabelText('Action')).toHaveValue('auth.login'));
    expect(within(again).getByLabelText('Actor')).toHaveValue('user:alice');
    expect(second.server.seen.find((s) => s.path.startsWith('/api/audit-logs?'))?.path).toContain(
      'action=auth.login',
    );
  });
});
