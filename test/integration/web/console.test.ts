import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { processEnvironment, testServices } from '#core/config';
import { type GatewayProcess, startGatewayProcess } from '#testing/start-gateway';
import {
  adminJourney,
  CHROMIUM,
  consumerJourney,
  deepLinkJourney,
  edgeJourney,
  openBrowser,
  shoot,
} from './console.e2e.ts';
import { assertAccessible } from './a11y.ts';
import { loadChromium } from './playwright.ts';

const PASSWORD = 'console-e2e-admin-pw';
const screenshots = processEnvironment()['GATEHOUSE_WEB_SCREENSHOTS'] === '1';

let gateway: GatewayProcess | undefined;
let skip: string | false = false;

before(async () => {
  if (!existsSync(CHROMIUM)) {
    skip = `${CHROMIUM} is not installed`;
    return;
  }
  if (loadChromium() === undefined) {
    skip = 'web/node_modules is missing: run "npm --prefix web ci"';
    return;
  }
  gateway = await startGatewayProcess({
    env: {
      GATEHOUSE_ADMIN_PASSWORD: PASSWORD,
      // The edge page needs the edge door: one TLS listener on a free loopback port.
      GATEHOUSE_EDGE_ENABLED: 'true',
      GATEHOUSE_EDGE_LISTENERS: JSON.stringify([{ id: 'default', host: '127.0.0.1', port: 0 }]),
    },
  });
  const home = await fetch(`${gateway.url}/`);
  const html = await home.text();
  // Until the composition root calls registerWebUi, the gateway has no console to test.
  if (!html.includes('<div id="root">'))
    skip = 'the gateway does not serve the web console at / (registerWebUi not wired, or web/dist not built)';
});

before(() => {
  // CI installs Chromium and builds the console; there, a missing piece is a failure, not a skip.
  if (skip !== false && testServices().requireServices)
    throw new Error(`Cannot run the browser tests: ${skip}`);
});

after(async () => {
  await gateway?.[Symbol.asyncDispose]();
});

describe('web console end to end', { timeout: 180_000 }, () => {
  it('admin: logs in, uploads, watches the scan approve, downloads and finds the audit entries', async (t) => {
    if (skip !== false || gateway === undefined) return t.skip(skip || 'no gateway');
    await using browser = await openBrowser(gateway.url);
    const gw = gateway;
    await adminJourney(browser, PASSWORD, screenshots).catch((error: unknown) => {
      // The gateway's warnings (a failed scan, say) tell why the page did not get there.
      throw new Error(
        `${error instanceof Error ? error.message : String(error)}\nGateway stderr:\n${gw.stderr()}`,
        {
          cause: error,
        },
      );
    });
    for (const [path, name, heading] of [
      ['/registry', 'registry', 'Registry'],
      ['/health', 'health', 'Health'],
      ['/admin/users', 'users', 'Users'],
      ['/admin/keys', 'keys', 'API keys'],
      ['/admin/roles', 'roles', 'Roles'],
    ] as const) {
      await browser.page.goto(path);
      await browser.page.getByRole('heading', { name: heading, level: 1 }).waitFor();
      await assertAccessible(browser.context, browser.page, name);
      // The charts plot rates between two scrapes of /metrics (5 s apart): wait for the first rate.
      if (name === 'health')
        await browser.page.getByText(/HTTP requests per second: \d/).waitFor({ timeout: 20_000 });
      if (name !== 'keys' && name !== 'roles') await shoot(browser.page, name, screenshots);
    }
    await browser.page.getByRole('button', { name: 'Switch to dark theme' }).click();
    await browser.page.goto('/artifacts');
    await browser.page.getByRole('link', { name: 'hello-console' }).waitFor();
    await assertAccessible(browser.context, browser.page, 'artifacts, dark theme');
    await shoot(browser.page, 'artifacts-dark', screenshots);
    // Half a laptop screen: the navigation folds away and nothing scrolls sideways.
    await browser.page.setViewportSize({ width: 683, height: 768 });
    await browser.page.getByRole('button', { name: 'Open navigation' }).waitFor();
    const overflow = await browser.page.evaluate<number>(
      'document.documentElement.scrollWidth - window.innerWidth',
    );
    assert.ok(overflow <= 0, `page scrolls sideways by ${overflow}px at 683px`);
    // The table shrinks its columns, but a short digest stays one word on one line.
    const digestLines = await browser.page.evaluate<number[]>(
      `[...document.querySelectorAll('[data-testid="short-digest"]')].map((e) => e.getClientRects().length)`,
    );
    assert.ok(digestLines.length > 0, 'the artifacts table shows short digests');
    assert.deepEqual(
      digestLines,
      digestLines.map(() => 1),
      'each short digest on one line at 683px',
    );
    assert.deepEqual(browser.problems, [], 'no console errors and no CSP violations');
  });

  it('consumer: sees no admin navigation and is refused admin pages and APIs', async (t) => {
    if (skip !== false || gateway === undefined) return t.skip(skip || 'no gateway');
    await consumerJourney(gateway.url, PASSWORD);
  });

  it('operator pages: adds and removes an edge route and an L7 policy through the real edge API', async (t) => {
    if (skip !== false || gateway === undefined) return t.skip(skip || 'no gateway');
    await edgeJourney(gateway.url, PASSWORD);
  });

  it('a signed-out visitor deep-linking to a page lands on login and comes back after signing in', async (t) => {
    if (skip !== false || gateway === undefined) return t.skip(skip || 'no gateway');
    await deepLinkJourney(gateway.url, PASSWORD);
  });
});
