import assert from 'node:assert/strict';
import type { BrowserContext, Page } from './playwright.ts';

/** One node of Chromium's computed accessibility tree (CDP `Accessibility.getFullAXTree`). */
interface AxNode {
  readonly ignored?: boolean;
  readonly role?: { readonly value?: string };
  readonly name?: { readonly value?: string };
  readonly properties?: readonly { readonly name: string; readonly value?: { readonly value?: unknown } }[];
  readonly backendDOMNodeId?: number;
}

/** Roles that are useless to a screen reader without a name (WAI-ARIA "name required"). */
const NAME_REQUIRED = new Set([
  'button',
  'link',
  'textbox',
  'searchbox',
  'combobox',
  'checkbox',
  'radio',
  'switch',
  'slider',
  'spinbutton',
  'menuitem',
  'tab',
  'listbox',
  'progressbar',
  'img',
  'table',
]);

/**
 * Checks the page as assistive technology sees it, from the tree Chromium itself computes: every
 * control and image has an accessible name, there is exactly one level-1 heading, and the
 * document declares its language. Returns the tree's size, so a caller can tell it looked.
 */
export async function assertAccessible(context: BrowserContext, page: Page, where: string): Promise<number> {
  const cdp = await context.newCDPSession(page);
  try {
    await cdp.send('Accessibility.enable');
    const { nodes } = (await cdp.send('Accessibility.getFullAXTree')) as { nodes: AxNode[] };
    const live = nodes.filter((n) => n.ignored !== true);
    const unnamed = live
      .filter((n) => NAME_REQUIRED.has(n.role?.value ?? '') && (n.name?.value ?? '').trim() === '')
      .map((n) => `${n.role?.value ?? '?'} #${n.backendDOMNodeId ?? '?'}`);
    assert.deepEqual(unnamed, [], `${where}: controls without an accessible name`);
    const h1 = live.filter(
      (n) =>
        n.role?.value === 'heading' && n.properties?.some((p) => p.name === 'level' && p.value?.value === 1),
    );
    assert.equal(
      h1.length,
      1,
      `${where}: one level-1 heading, found ${h1.map((n) => n.name?.value).join(', ')}`,
    );
    assert.equal(
      await page.evaluate<string>('document.documentElement.lang'),
      'en',
      `${where}: document language`,
    );
    return live.length;
  } finally {
    await cdp.detach();
  }
}

/** Presses Tab until `matches` holds for the focused element (bounded), then returns its text. */
export async function tabTo(page: Page, matches: string, max = 40): Promise<string> {
  for (let i = 0; i < max; i += 1) {
    await page.keyboard.press('Tab');
    const text = await page.evaluate<string | null>(
      `(() => { const e = document.activeElement; return e !== null && e.matches(${JSON.stringify(matches)}) ? (e.getAttribute('aria-label') || e.textContent || e.getAttribute('name') || '').trim() : null; })()`,
    );
    if (text !== null) return text;
  }
  throw new Error(`Tab never reached "${matches}" in ${max} presses`);
}
