import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestPki } from '../edge/certs.ts';
import { assertAccessible, assertContrast, tabTo } from './a11y.ts';
import { type BrowserContext, loadChromium, type Page } from './playwright.ts';

/** Debian's Chromium: the tests never download a browser. */
export const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SCREENSHOTS = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'docs', 'screenshots');

export interface Browser extends AsyncDisposable {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Console errors and CSP violations seen so far. */
  readonly problems: string[];
}

/** A fresh Chromium profile (own --user-data-dir) with one page, collecting console errors. */
export async function openBrowser(baseURL: string): Promise<Browser> {
  const chromium = loadChromium();
  if (chromium === undefined) throw new TypeError('playwright-core is not installed in web/node_modules');
  const profile = mkdtempSync(join(tmpdir(), 'gatehouse-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: ARGS,
    headless: true,
    baseURL,
    acceptDownloads: true,
    viewport: { width: 1280, height: 800 },
    colorScheme: 'light',
  });
  const page = context.pages()[0] ?? (await context.newPage());
  // Generous: CI shares two cores with the gateway, its scan worker and Chromium.
  page.setDefaultTimeout(30_000);
  const problems: string[] = [];
  page.on('console', (m) => {
    // 401s and 403s the console provokes on purpose are logged by Chromium as resource errors.
    if (m.type() === 'error' && !/status of 40[134]/.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  return {
    context,
    page,
    problems,
    async [Symbol.asyncDispose]() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Saves a screenshot of the page into docs/screenshots when GATEHOUSE_WEB_SCREENSHOTS=1. */
export async function shoot(page: Page, name: string, wanted: boolean): Promise<void> {
  if (!wanted) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: false });
}

/** Takes one console error the journey provoked on purpose out of `problems`, so any other still fails it. */
function expectedProblem(problems: string[], pattern: RegExp): void {
  const at = problems.findIndex((p) => pattern.test(p));
  assert.ok(at >= 0, `expected a console error matching ${pattern}: ${JSON.stringify(problems)}`);
  problems.splice(at, 1);
}

/** Signs in with the keyboard only: the username field has focus, Tab moves on, Enter submits. */
async function keyboardLogin(page: Page, username: string, password: string): Promise<void> {
  await page.getByLabel('Username').waitFor();
  assert.equal(await page.evaluate<string>('document.activeElement?.getAttribute("name") ?? ""'), 'username');
  await page.keyboard.type(username);
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate<string>('document.activeElement?.getAttribute("name") ?? ""'), 'password');
  await page.keyboard.type(password);
  await page.keyboard.press('Enter');
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

/**
 * Drops a file on the upload page's drop zone the way a browser delivers a drag from the desktop:
 * a real DataTransfer holding a File, through dragenter, dragover and drop.
 */
async function dropFile(page: Page, name: string, type: string, bytes: Buffer): Promise<void> {
  const dropped = await page.evaluate<boolean>(`(() => {
    const bytes = Uint8Array.from(atob(${JSON.stringify(bytes.toString('base64'))}), (c) => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], ${JSON.stringify(name)}, { type: ${JSON.stringify(type)} }));
    const zone = document.querySelector('[data-testid="dropzone"]');
    if (zone === null) return false;
    for (const kind of ['dragenter', 'dragover', 'drop'])
      zone.dispatchEvent(new DragEvent(kind, { bubbles: true, cancelable: true, dataTransfer: transfer }));
    return true;
  })()`);
  assert.ok(dropped, 'the upload page has a drop zone');
}

export async function login(page: Page, username: string, password: string): Promise<void> {
  await page.goto('/login');
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

/** An artifact with real bytes: a small package.json-bearing file the scanner can read. */
export function artifactBytes(): Buffer {
  return Buffer.from(
    `${JSON.stringify({ name: 'hello-console', version: '1.0.0', description: 'uploaded by the e2e test' }, null, 2)}\n`,
  );
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * The admin's journey: upload by the file picker, watch scan and approval, download and compare
 * bytes, then find the upload and download in the audit log.
 */
export async function adminJourney(browser: Browser, password: string, screenshots: boolean): Promise<void> {
  const { page, context, problems } = browser;
  await page.goto('/login');
  await assertAccessible(context, page, 'login');
  // The check itself can fail: a nameless button makes it refuse the page.
  await page.evaluate<void>(
    `document.body.append(Object.assign(document.createElement('button'), { id: 'nameless' }))`,
  );
  await assert.rejects(
    assertAccessible(context, page, 'login with a nameless button'),
    /without an accessible name/,
  );
  await page.evaluate<void>(`document.getElementById('nameless').remove()`);
  // And so can the contrast check: light grey on white is 2.3:1.
  await page.evaluate<void>(
    `document.body.append(Object.assign(document.createElement('p'), { id: 'faint', textContent: 'faint text', style: 'color: #aaaaaa; background: #ffffff' }))`,
  );
  await assert.rejects(assertContrast(page, 'login with faint text'), /faint text/);
  await page.evaluate<void>(`document.getElementById('faint').remove()`);
  await shoot(page, 'login', screenshots);
  await keyboardLogin(page, 'admin', password);
  const bytes = artifactBytes();
  await page.goto('/artifacts');
  await page.getByRole('table', { name: 'Repositories' }).waitFor();
  await assertAccessible(context, page, 'artifacts');
  // The keyboard reaches the upload page from the list.
  assert.equal(await tabTo(page, 'a[href="/artifacts/upload"]'), 'Upload');
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/artifacts\/upload$/);
  // The router moves the URL before React renders the page (a transition): wait for the page
  // itself, or the checks below look at the list still on screen.
  await page.getByTestId('dropzone').waitFor();
  await assertAccessible(context, page, 'upload');
  await dropFile(page, 'hello-console-1.0.0.json', 'application/json', bytes);
  await page.getByText('hello-console-1.0.0.json', { exact: false }).waitFor();
  assert.equal(await page.getByLabel('Name').inputValue(), 'hello-console');
  assert.equal(await page.getByLabel('Version').inputValue(), '1.0.0');
  // A refused upload says why, with its errorId, and keeps the file and every field.
  await page.getByLabel('Repository').fill('Not a repository');
  const refusedLogged = page.waitForEvent('console', { predicate: (m) => /status of 400/.test(m.text()) });
  await page.getByRole('button', { name: 'Upload' }).click();
  const refusal = page.getByRole('alert').filter({ hasText: 'Invalid repository' });
  await refusal.getByTestId('error-id').waitFor();
  await page.getByText('Your file and fields are kept').waitFor();
  // The refusal names the repository: the keyboard is moved there, the field is marked invalid and
  // its description (what a screen reader reads with it) is the reason.
  const focused = await page.evaluate<{
    label: string;
    invalid: string | null;
    description: string;
  }>(`(() => {
    const el = document.activeElement;
    const ids = (el?.getAttribute('aria-describedby') ?? '').split(' ').filter(Boolean);
    return {
      label: el?.labels?.[0]?.textContent ?? '',
      invalid: el?.getAttribute('aria-invalid') ?? null,
      description: ids.map((id) => document.getElementById(id)?.textContent ?? '').join(' '),
    };
  })()`);
  assert.match(focused.label, /^Repository/);
  assert.equal(focused.invalid, 'true');
  assert.match(focused.description, /Invalid repository/);
  await refusedLogged;
  expectedProblem(problems, /status of 400/);
  assert.equal(await page.getByLabel('Name').inputValue(), 'hello-console');
  assert.equal(await page.getByLabel('Version').inputValue(), '1.0.0');
  assert.equal(await page.getByLabel('Repository').inputValue(), 'Not a repository');
  await page.getByLabel('Repository').fill('default');
  await shoot(page, 'upload', screenshots);
  await page.getByRole('button', { name: 'Upload' }).click();
  await page.waitForURL(/\/artifacts\/[0-9a-f-]{36}$/);
  assert.equal(await page.getByTestId('artifact-sha256').textContent(), sha256(bytes));
  // The page polls while the scan runs; the verdict appears without a reload.
  await page.getByTestId('artifact-status').getByText('approved').waitFor({ timeout: 30_000 });
  await page.getByRole('heading', { name: 'Scan report' }).waitFor();
  await assertAccessible(context, page, 'artifact detail');
  await shoot(page, 'artifact-detail', screenshots);
  await streamedDownload(page, bytes, problems);
  await page.goto('/artifacts');
  await page.getByRole('link', { name: 'hello-console' }).waitFor();
  await shoot(page, 'artifacts', screenshots);
  await page.goto('/audit');
  await page.getByRole('cell', { name: 'artifacts.upload' }).first().waitFor();
  await page.getByRole('cell', { name: 'artifacts.download' }).first().waitFor();
  await assertAccessible(context, page, 'audit');
  await page.getByRole('button', { name: 'Verify chain' }).click();
  await page
    .getByTestId('chain-status')
    .getByText(/intact/)
    .waitFor();
  await shoot(page, 'audit', screenshots);
}

/**
 * The browser downloads the artifact itself (a form POST with a single-use ticket into a hidden
 * frame), so the console never holds the file and no URL carries a credential. A spoiled ticket
 * first shows that a refused download tells the user instead of failing silently.
 */
async function streamedDownload(page: Page, bytes: Buffer, problems: string[]): Promise<void> {
  const requests: { method: string; url: string; body: string }[] = [];
  page.on('request', (r) => requests.push({ method: r.method(), url: r.url(), body: r.postData() ?? '' }));
  await page.route(
    '**/download-tickets',
    async (route) => {
      const response = await route.fetch();
      const issued = (await response.json()) as Record<string, unknown>;
      await route.fulfill({ response, json: { ...issued, ticket: 'x'.repeat(43) } });
    },
    { times: 1 },
  );
  const download = page.getByRole('button', { name: 'Download', exact: true });
  const framingLogged = page.waitForEvent('console', {
    predicate: (m) => /frame-ancestors 'none'/.test(m.text()),
  });
  await download.click();
  await page.getByRole('alert').getByText('Download did not start').waitFor();
  await framingLogged;
  // The refusal (a problem document, never framed: frame-ancestors 'none') is the one expected
  // console error; take it out so that any other still fails the journey.
  expectedProblem(problems, /^Framing .* "frame-ancestors 'none'"/);
  const [file] = await Promise.all([page.waitForEvent('download'), download.click()]);
  const saved = await file.path();
  assert.ok(saved !== null);
  assert.deepEqual(readFileSync(saved), bytes);
  // The successful download left no failure behind (a file answer does not load the frame).
  assert.equal(await page.getByRole('alert').getByText('Download did not start').count(), 0);
  const posts = requests.filter((r) => new URL(r.url).pathname.endsWith('/download'));
  assert.equal(posts.length, 2, JSON.stringify(requests.map((r) => `${r.method} ${r.url}`)));
  for (const post of posts) {
    assert.equal(post.method, 'POST');
    assert.match(post.body, /^ticket=[A-Za-z0-9_-]{43}$/);
  }
  for (const r of requests) assert.doesNotMatch(r.url, /ticket=|access_token=/, r.url);
}

const CONSUMER_PASSWORD = 'console-e2e-consumer-pw';

export async function api(
  url: string,
  path: string,
  init: RequestInit & { token?: string } = {},
): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.token !== undefined) headers.set('authorization', `Bearer ${init.token}`);
  if (init.body !== undefined) headers.set('content-type', 'application/json');
  return fetch(url + path, { ...init, headers });
}

export async function token(url: string, username: string, password: string): Promise<string> {
  const response = await api(url, '/api/auth/login', {
    method: 'POST',
    body: JSON.stringify({ username, password }),
  });
  assert.equal(response.status, 200, await response.clone().text());
  return ((await response.json()) as { accessToken: string }).accessToken;
}

/** A consumer sees no admin navigation, gets the forbidden page on admin URLs, and the API refuses too. */
export async function consumerJourney(url: string, password: string): Promise<void> {
  const admin = await token(url, 'admin', password);
  const created = await api(url, '/api/users', {
    method: 'POST',
    token: admin,
    body: JSON.stringify({
      username: 'carol',
      password: CONSUMER_PASSWORD,
      roles: [{ role: 'consumer', namespace: '*' }],
    }),
  });
  assert.equal(created.status, 201, await created.clone().text());
  await using browser = await openBrowser(url);
  const { page } = browser;
  await login(page, 'carol', CONSUMER_PASSWORD);
  const nav = page.getByRole('navigation', { name: 'Main' });
  await nav.getByRole('link', { name: 'Artifacts' }).waitFor();
  for (const name of ['Users', 'API keys', 'Roles', 'Audit log', 'Registry', 'Edge routes'])
    assert.equal(await nav.getByRole('link', { name }).count(), 0, name);
  for (const path of ['/admin/users', '/admin/keys', '/admin/roles', '/audit']) {
    await page.goto(path);
    await page.getByTestId('forbidden').waitFor();
  }
  // The server refuses too: hiding a page is not the control.
  const consumer = await token(url, 'carol', CONSUMER_PASSWORD);
  for (const path of ['/api/users', '/api/audit-logs']) {
    const response = await api(url, path, { token: consumer });
    assert.equal(response.status, 403, path);
    const body = (await response.json()) as { code?: string; errorId?: string };
    assert.equal(body.code, 'GW_ERR_RBAC_DENIED');
    assert.ok(typeof body.errorId === 'string' && body.errorId !== '');
  }
  assert.deepEqual(browser.problems, []);
}

/** A signed-out deep link goes through login (a failed try shows its errorId) and back. */
export async function deepLinkJourney(url: string, password: string): Promise<void> {
  await using browser = await openBrowser(url);
  const { page } = browser;
  await page.goto('/audit?from=deep-link');
  await page.waitForURL(/\/login\?next=%2Faudit%3Ffrom%3Ddeep-link$/);
  // A wrong try on another account: a failure locks that account for a moment (core/auth lockout).
  await page.getByLabel('Username').fill('nobody');
  await page.getByLabel('Password').fill('wrong-password-here');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').getByTestId('error-id').waitFor();
  assert.equal(await page.getByLabel('Password').inputValue(), '');
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/audit\?from=deep-link$/);
  await page.getByRole('heading', { name: 'Audit log', level: 1 }).waitFor();
}

/**
 * The edge page against the real edge API: an operator adds an L7 route (its certificate files
 * made here, on the gateway's host) and an L7 policy on it, sees both, and removes both after
 * confirming; the API agrees at every step.
 */
export async function edgeJourney(url: string, password: string): Promise<void> {
  const admin = await token(url, 'admin', password);
  await using pki = await createTestPki();
  const leaf = await pki.issue('console', ['app.console.test']);
  await using browser = await openBrowser(url);
  const { page, context } = browser;
  const confirmations: string[] = [];
  page.on('dialog', (dialog) => {
    confirmations.push(dialog.message());
    void dialog.accept();
  });
  await login(page, 'admin', password);
  await page.goto('/edge');
  const routes = page.getByRole('table', { name: 'Edge routes' });
  await routes.waitFor();
  await assertAccessible(context, page, 'edge');
  const routeForm = page.getByRole('form', { name: 'Add route' });
  await routeForm.getByLabel('Id', { exact: false }).fill('console-l7');
  await routeForm.getByLabel('Host (SNI)', { exact: false }).fill('app.console.test');
  // A policy acts on HTTP requests: it needs an L7 route (the API refuses one on L4).
  await routeForm.getByRole('combobox', { name: /^Mode/ }).click();
  await page.getByRole('option', { name: 'l7', exact: true }).click();
  await routeForm.getByLabel('Backend host:port', { exact: false }).fill('127.0.0.1:9');
  await routeForm.getByLabel('Certificate file', { exact: false }).fill(leaf.certFile);
  await routeForm.getByLabel('Key file', { exact: false }).fill(leaf.keyFile);
  await routeForm.getByRole('button', { name: 'Add' }).click();
  await routes.getByRole('cell', { name: 'console-l7', exact: true }).waitFor();
  const policyForm = page.getByRole('form', { name: 'Add policy' });
  await policyForm.getByLabel('Policy id', { exact: false }).fill('no-bots');
  await policyForm.getByLabel('Route id', { exact: false }).fill('console-l7');
  await policyForm.getByLabel('User-Agent contains', { exact: false }).fill('badbot');
  await policyForm.getByRole('button', { name: 'Add' }).click();
  const policies = page.getByRole('table', { name: 'L7 policies' });
  await policies.getByRole('cell', { name: 'no-bots', exact: true }).waitFor();
  const listed = (await (await api(url, '/api/edge/policies', { token: admin })).json()) as {
    policies: { id: string; route: string; kind: string; value?: string }[];
  };
  assert.deepEqual(listed.policies, [
    { id: 'no-bots', route: 'console-l7', kind: 'block-user-agent', value: 'badbot' },
  ]);

  await page.getByRole('button', { name: 'Remove policy no-bots' }).click();
  await policies.getByRole('cell', { name: 'no-bots', exact: true }).waitFor({ state: 'detached' });
  await page.getByRole('button', { name: 'Remove route console-l7' }).click();
  await routes.getByRole('cell', { name: 'console-l7', exact: true }).waitFor({ state: 'detached' });
  assert.deepEqual(confirmations, [
    'Remove policy "no-bots"? Traffic is affected at once.',
    'Remove route "console-l7"? Traffic is affected at once.',
  ]);
  const left = (await (await api(url, '/api/edge/routes', { token: admin })).json()) as { routes: unknown[] };
  assert.deepEqual(left.routes, []);
  assert.deepEqual(browser.problems, []);
}
