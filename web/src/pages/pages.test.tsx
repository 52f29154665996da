import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { json, problem } from '../test/fake-server.ts';
import { artifact, detailRoutes } from '../test/artifacts.ts';
import { renderApp, signIn } from '../test/render.tsx';
import { POLL_MS } from './artifact-detail.tsx';
import { guessNameVersion } from './upload.tsx';

afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

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

describe('artifact trust', () => {
  it('names the verified signer and marks the identities signatures claim as unverified', async () => {
    signIn(ADMIN, 'root');
    const a = artifact(1);
    renderApp(`/artifacts/${a.id}`, {
      [`GET /api/artifacts/${a.id}`]: () => json({ ...a, status: 'approved', scanState: 'done' }),
      ...detailRoutes(a),
      [`GET /api/artifacts/${a.id}/signatures`]: () =>
        json({
          signatures: [
            {
              id: 's1',
              kind: 'key',
              identity: 'Release Team (official)',
              createdBy: 'user:eve',
              createdAt: a.createdAt,
            },
          ],
        }),
      [`GET /api/artifacts/${a.id}/verification`]: () =>
        json({
          trusted: true,
          signer: 'key:release',
          reasons: ['Signed by key:release'],
          policyVersion: 'p',
        }),
    });
    expect(await screen.findByTestId('trust')).toHaveTextContent('verified signature of key:release');
    expect(screen.getByText(/naming/).textContent).toMatch(/Release Team \(official\) \(unverified\)/);
  });
});

describe('override form', () => {
  it('offers an overridden artifact back to the policy, and sends that verdict', async () => {
    signIn(ADMIN, 'root');
    const a = { ...artifact(1), status: 'blocked', statusBy: 'override', scanState: 'done' };
    const { server } = renderApp(`/artifacts/${a.id}`, {
      [`GET /api/artifacts/${a.id}`]: () => json(a),
      ...detailRoutes(artifact(1)),
      [`POST /api/artifacts/${a.id}/verdict`]: () => json({ ...a, statusBy: 'policy' }),
    });
    const user = userEvent.setup();
    await user.click(await screen.findByLabelText('Back to the policy (rescan)'));
    await user.type(screen.getByLabelText(/Reason/), 'review done');
    await user.click(screen.getByRole('button', { name: 'Override verdict' }));
    await waitFor(() =>
      expect(server.seen.find((r) => r.method === 'POST')?.body).toEqual({
        status: 'policy',
        reason: 'review done',
      }),
    );
  });

  it('does not offer it to an artifact the policy decided', async () => {
    signIn(ADMIN, 'root');
    const a = { ...artifact(1), status: 'approved', statusBy: 'policy', scanState: 'done' };
    renderApp(`/artifacts/${a.id}`, {
      [`GET /api/artifacts/${a.id}`]: () => json(a),
      ...detailRoutes(artifact(1)),
    });
    await screen.findByLabelText('Block');
    expect(screen.queryByLabelText('Back to the policy (rescan)')).toBeNull();
  });
});

describe('upload page', () => {
  /** The page's XMLHttpRequest, answered by the test. */
  class HeldXhr {
    static last: HeldXhr | undefined;
    status = 0;
    responseText = '';
    upload: { onprogress: ((e: { loaded: number; total: number }) => void) | null } = { onprogress: null };
    onload: (() => void) | null = null;
    onerror: (() => void) | null = null;
    onabort: (() => void) | null = null;
    open() {}
    setRequestHeader() {}
    getResponseHeader() {
      return null;
    }
    send() {
      HeldXhr.last = this;
    }
    abort() {
      this.onabort?.();
    }
    refuse(field: string, detail: string) {
      this.status = 400;
      this.responseText = JSON.stringify({
        title: 'GW_ERR_ARTIFACTS_UPLOAD_INVALID',
        code: 'GW_ERR_ARTIFACTS_UPLOAD_INVALID',
        detail,
        errorId: 'e-400',
        // The server's problem carries the field as an extension member, beside code and detail.
        field,
      });
      this.onload?.();
    }
  }
  const sent = async () => {
    await waitFor(() => expect(HeldXhr.last).toBeDefined());
    const xhr = HeldXhr.last as HeldXhr;
    HeldXhr.last = undefined;
    return xhr;
  };

  it('offers the keyboard a way to choose the file, announces the file and the progress, and ties a refusal to its field', async () => {
    signIn(ADMIN, 'root');
    vi.stubGlobal('XMLHttpRequest', HeldXhr);
    const user = userEvent.setup();
    renderApp('/artifacts/upload', {});
    const zone = await screen.findByRole('group', { name: 'File to upload' });
    // The progress region is on the page before anything happens, so its changes are read out.
    const form = screen.getByRole('form', { name: 'Upload' });
    const progress = within(form).getByRole('status');
    expect(progress).toHaveTextContent('');

    // Without a mouse: Tab reaches "Choose a file", Enter opens the picker.
    const picker = vi.spyOn(HTMLInputElement.prototype, 'click').mockImplementation(() => undefined);
    const choose = within(zone).getByRole('button', { name: 'Choose a file' });
    while (document.activeElement !== choose && document.activeElement !== document.body.lastElementChild)
      await user.tab();
    expect(choose).toHaveFocus();
    await user.keyboard('{Enter}');
    expect(picker).toHaveBeenCalledTimes(1);
    picker.mockRestore();
    await user.upload(screen.getByTestId('file-input'), new File(['x'.repeat(2048)], 'tool-1.2.0.tgz'));
    // The chosen file is announced, and describes the button that changes it.
    const chosen = within(zone).getByText(/^Chosen: tool-1\.2\.0\.tgz/);
    expect(chosen).toHaveAttribute('aria-live', 'polite');
    expect(within(zone).getByRole('button', { name: 'Choose another file' })).toHaveAccessibleDescription(
      chosen.textContent ?? '',
    );

    await user.click(screen.getByRole('button', { name: 'Upload' }));
    let xhr = await sent();
    expect(form).toHaveAttribute('aria-busy', 'true');
    xhr.upload.onprogress?.({ loaded: 1100, total: 2048 });
    await waitFor(() => expect(progress).toHaveTextContent('Uploading… 50%'));
    expect(screen.getByRole('progressbar', { name: 'Upload progress' })).toBeInTheDocument();

    // A refusal that names a field marks it invalid, describes it with the reason, and moves there.
    xhr.refuse('version', 'Invalid version "1.2.0 beta"');
    const version = await screen.findByRole('textbox', { name: /^Version/ });
    await waitFor(() => expect(version).toHaveAttribute('aria-invalid', 'true'));
    expect(version).toHaveAccessibleDescription('Invalid version "1.2.0 beta"');
    expect(version).toHaveFocus();
    expect(progress).toHaveTextContent('Upload failed.');
    expect(screen.getByRole('textbox', { name: /^Name/ })).toHaveAttribute('aria-invalid', 'false');

    // One about the file itself describes the button that chooses it.
    await user.click(screen.getByRole('button', { name: 'Upload' }));
    xhr = await sent();
    xhr.refuse('sha256', 'The body does not match the expected SHA-256');
    await waitFor(() =>
      expect(within(zone).getByRole('button', { name: 'Choose another file' })).toHaveAccessibleDescription(
        /does not match the expected SHA-256/,
      ),
    );
    expect(version).toHaveAttribute('aria-invalid', 'false');
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
