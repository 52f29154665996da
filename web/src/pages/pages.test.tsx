import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { json, problem } from '../test/fake-server.ts';
import { artifact, detailRoutes } from '../test/artifacts.ts';
import { renderApp, signIn } from '../test/render.tsx';
import { POLL_MS } from './artifact-detail.tsx';
import { guessNameVersion } from './upload.tsx';

const ADMIN = [{ role: 'admin', ns: '*' }];
describe('artifacts list', () => {
  it('lists, sorts and filters through the API query', async () => {
    signIn(ADMIN, 'root');
    const user = userEvent.setup();
    const { server } = renderApp('/artifacts', {
      'GET /api/artifacts': () => json({ items: [artifact(1), artifact(2)], total: 2 }),
    });
    const table = await screen.findByRole('table', { name: 'Artifacts' });
    await within(table).findByRole('link', { name: 'pkg-1' });
    expect(within(table).getByText('approved')).toBeInTheDocument();
    await user.click(within(table).getByRole('button', { name: 'Size' }));
    await waitFor(() => expect(server.seen.at(-1)?.path).toContain('sort=size&order=desc'));
    await user.type(screen.getByLabelText('Search by name'), 'pkg');
    await waitFor(() => expect(server.seen.at(-1)?.path).toContain('name=pkg'), { timeout: 2000 });
  });

  it('follows the URL when it changes under the search box: the Artifacts link clears the name filter', async () => {
    signIn(ADMIN, 'root');
    const user = userEvent.setup();
    const { server } = renderApp('/artifacts?name=pkg-2', {
      'GET /api/artifacts': () => json({ items: [artifact(2)], total: 1 }),
    });
    expect(await screen.findByLabelText('Search by name')).toHaveValue('pkg-2');
    await user.click(await screen.findByRole('button', { name: 'Open navigation' }));
    await user.click(
      within(await screen.findByRole('navigation', { name: 'Main' })).getByRole('link', {
        name: 'Artifacts',
      }),
    );
    await waitFor(() => expect(screen.getByLabelText('Search by name')).toHaveValue(''));
    // Longer than the typing pause: the old text must not come back into the URL.
    await new Promise((r) => setTimeout(r, 500));
    expect(screen.getByTestId('location').textContent).toBe('/artifacts');
    expect(server.seen.at(-1)?.path).not.toContain('name=');
  });
});

describe('artifacts paging', () => {
  it('moves a link to a page past the end to the last page, instead of showing no match beside a count', async () => {
    signIn(ADMIN, 'root');
    const { server } = renderApp('/artifacts?page=5&limit=10&sort=name', {
      'GET /api/artifacts': ({ path }) => {
        const offset = Number(new URL(path, 'http://x').searchParams.get('offset'));
        const items = Array.from({ length: 12 }, (_, i) => artifact(i)).slice(offset, offset + 10);
        return json({ items, total: 12 });
      },
    });
    const table = await screen.findByRole('table', { name: 'Artifacts' });
    await within(table).findByRole('link', { name: 'pkg-11' });
    expect(screen.getByTestId('location').textContent).toBe('/artifacts?page=1&limit=10&sort=name');
    expect(within(table).queryByText('No artifacts match.')).toBeNull();
    expect(server.seen.at(-1)?.path).toContain('offset=10');
  });
});

describe('repositories', () => {
  it('lists repositories with their counts and filters the artifacts by the one chosen', async () => {
    signIn([{ role: 'consumer', ns: 'team' }]);
    const user = userEvent.setup();
    const { server } = renderApp('/artifacts', {
      'GET /api/artifacts/-/repositories': () =>
        json({
          repositories: [
            {
              name: 'team',
              artifacts: 2,
              size: 4096,
              quota: 8192,
              approved: 1,
              quarantined: 1,
              blocked: 0,
              lastUploadAt: '2026-01-01T00:00:00Z',
            },
          ],
          total: 1,
        }),
    });
    const table = await screen.findByRole('table', { name: 'Repositories' });
    const row = within(table).getByRole('button', { name: 'team' }).closest('tr');
    expect(row).not.toBeNull();
    expect(within(row as HTMLElement).getByText('4.0 KiB of 8.0 KiB (50%)')).toBeInTheDocument();
    const choose = within(table).getByRole('button', { name: 'team' });
    expect(choose).toHaveAttribute('aria-pressed', 'false');
    await user.click(choose);
    await waitFor(() => expect(server.seen.at(-1)?.path).toContain('repository=team'));
    expect(within(table).getByRole('button', { name: 'team' })).toHaveAttribute('aria-pressed', 'true');
    expect(screen.getByLabelText('Repository')).toHaveValue('team');
    // Choosing it again clears the filter.
    await user.click(within(table).getByRole('button', { name: 'team' }));
    await waitFor(() => expect(server.seen.at(-1)?.path).not.toContain('repository='));
  });
});

describe('audit page', () => {
  it('shows a broken chain as an error with where it broke', async () => {
    signIn(ADMIN, 'root');
    const user = userEvent.setup();
    renderApp('/audit', {
      'GET /api/audit-logs': () =>
        json({
          events: [
            {
              seq: 7,
              time: '2026-01-01T00:00:00Z',
              actor: 'user:1',
              action: 'artifacts.upload',
              resource: 'artifact:x',
              decision: 'allow',
              hash: 'h',
              prevHash: 'p',
            },
          ],
        }),
      'GET /api/audit-logs/verify': () =>
        problem(
          500,
          'GW_ERR_AUDIT_CHAIN_BROKEN',
          'The audit chain is broken at record 5: hash mismatch',
          'e-5',
        ),
    });
    expect(await screen.findByText('artifacts.upload')).toBeInTheDocument();
    await user.click(screen.getByRole('button', { name: 'Verify chain' }));
    expect(await screen.findByTestId('chain-status')).toHaveTextContent(/broken at record 5.*error id e-5/);
  });
});

describe('artifact detail', () => {
  it('polls while quarantined until the verdict arrives, even past a finished scan state', async () => {
    signIn(ADMIN, 'root');
    const a = artifact(1);
    const states = [
      { status: 'quarantined', scanState: 'pending' },
      { status: 'quarantined', scanState: 'done' },
      { status: 'approved', scanState: 'done' },
    ];
    let polls = 0;
    renderApp(`/artifacts/${a.id}`, {
      [`GET /api/artifacts/${a.id}`]: () => json({ ...a, ...states[Math.min(polls++, states.length - 1)] }),
      ...detailRoutes(a),
    });
    const status = await screen.findByTestId('artifact-status');
    expect(status).toHaveTextContent('quarantined');
    await waitFor(() => expect(screen.getByTestId('artifact-status')).toHaveTextContent('approved'), {
      timeout: 3 * POLL_MS + 2000,
    });
    expect(polls).toBe(3);
  });
});

describe('guessNameVersion', () => {
  it('splits common file names', () => {
    expect(guessNameVersion('left-pad-1.3.0.tgz')).toEqual({ name: 'left-pad', version: '1.3.0' });
    expect(guessNameVersion('tool_v2.0.1-rc.1.zip')).toEqual({ name: 'tool', version: '2.0.1-rc.1' });
    expect(guessNameVersion('README')).toEqual({ name: 'README', version: '' });
    expect(guessNameVersion('hello-console-1.0.0.json')).toEqual({ name: 'hello-console', version: '1.0.0' });
    expect(guessNameVersion('app-2.1.0.tar.gz')).toEqual({ name: 'app', version: '2.1.0' });
    expect(guessNameVersion('.env')).toEqual({ name: '.env', version: '' });
  });
});
