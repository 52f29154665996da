import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiClient } from '../api/client.ts';
import { ApiError } from '../api/problem.ts';
import { fakeServer, json, problem } from '../test/fake-server.ts';
import { signIn } from '../test/render.tsx';
import { DOWNLOAD_FRAME, downloadArtifact } from './download.ts';

const ID = '00000000-0000-4000-8000-000000000001';
const TICKET = 'T'.repeat(43);

interface Submitted {
  readonly method: string;
  readonly action: string;
  readonly target: string;
  readonly fields: Record<string, string>;
}

function captureSubmits(): Submitted[] {
  const submitted: Submitted[] = [];
  vi.spyOn(HTMLFormElement.prototype, 'submit').mockImplementation(function (this: HTMLFormElement) {
    submitted.push({
      method: this.method,
      action: this.getAttribute('action') ?? '',
      target: this.target,
      fields: Object.fromEntries(
        [...this.querySelectorAll('input')].map((i) => [i.name, i.value] as [string, string]),
      ),
    });
  });
  return submitted;
}

afterEach(() => {
  vi.restoreAllMocks();
  document.body.replaceChildren();
});

describe('artifact download', () => {
  it('asks for a ticket with the bearer token, then lets the browser stream a form POST', async () => {
    signIn([{ role: 'consumer', ns: '*' }]);
    const server = fakeServer({
      [`POST /api/artifacts/${ID}/download-tickets`]: () =>
        json(
          {
            ticket: TICKET,
            expiresAt: '2026-01-01T00:01:00Z',
            method: 'POST',
            action: `/api/artifacts/${ID}/download`,
            field: 'ticket',
          },
          201,
        ),
    });
    const client = new ApiClient({ storage: sessionStorage, fetch: server.fetch });
    const submitted = captureSubmits();
    const failures: ApiError[] = [];
    await downloadArtifact(client, ID, (e) => failures.push(e));
    // The console never fetches the file itself: nothing of it passes through its memory.
    expect(server.seen.map((s) => `${s.method} ${s.path}`)).toEqual([
      `POST /api/artifacts/${ID}/download-tickets`,
    ]);
    expect(server.seen[0]?.headers.get('authorization')).toMatch(/^Bearer /);
    expect(submitted).toEqual([
      {
        method: 'post',
        action: `/api/artifacts/${ID}/download`,
        target: DOWNLOAD_FRAME,
        fields: { ticket: TICKET },
      },
    ]);
    // Neither the ticket nor the access token is written into a URL or left in the page.
    expect(submitted[0]?.action).not.toContain(TICKET);
    expect(document.querySelector('form')).toBeNull();
    const frame = document.querySelector<HTMLIFrameElement>(`iframe[name="${DOWNLOAD_FRAME}"]`);
    expect(frame).not.toBeNull();
    expect(frame?.hidden).toBe(true);
    expect(failures).toEqual([]);
    // A frame that loads got a page instead of a file: the user hears the download did not start.
    frame?.dispatchEvent(new Event('load'));
    expect(failures.map((e) => e.code)).toEqual(['CLIENT_DOWNLOAD_FAILED']);
  });

  it('shows a refusal as the server explained it and submits nothing', async () => {
    signIn([{ role: 'consumer', ns: '*' }]);
    const server = fakeServer({
      [`POST /api/artifacts/${ID}/download-tickets`]: () =>
        problem(403, 'GW_ERR_ARTIFACTS_NOT_APPROVED', 'Artifact is quarantined', 'err-q'),
    });
    const client = new ApiClient({ storage: sessionStorage, fetch: server.fetch });
    const submitted = captureSubmits();
    const refused = await downloadArtifact(client, ID, () => undefined).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).errorId).toBe('err-q');
    expect((refused as ApiError).code).toBe('GW_ERR_ARTIFACTS_NOT_APPROVED');
    expect(submitted).toEqual([]);
  });
});
