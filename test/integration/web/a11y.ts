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
 * control and image has an accessible name, there is exactly one level-1 heading, the
 * document declares its language, and every text meets WCAG AA contrast (assertContrast). Returns the tree's size, so a caller can tell it looked.
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
    await assertContrast(page, where);
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

/** One text whose contrast against what is behind it is below WCAG 2.2's minimum (1.4.3). */
export interface LowContrast {
  readonly text: string;
  readonly ratio: number;
  readonly required: number;
  readonly color: string;
  readonly background: string;
}

/**
 * Measures, in the page, the contrast of every visible, enabled text against its effective
 * background (the ancestors' background colours composited, alpha included), with WCAG's
 * relative luminance. Large text (24px, or 18.66px bold) needs 3:1, other text 4.5:1; disabled
 * controls are exempt (WCAG 1.4.3). Background images are not considered: the console uses none.
 */
const CONTRAST_SCRIPT = `(() => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return [0, 0, 0, 0];
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const over = (top, bottom) => { const a = top[3] + bottom[3] * (1 - top[3]); if (a === 0) return [0, 0, 0, 0];
    return [0, 1, 2].map((i) => (top[i] * top[3] + bottom[i] * bottom[3] * (1 - top[3])) / a).concat([a]); };
  const lum = (c) => { const [r, g, b] = c.slice(0, 3).map((v) => { const s = v / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4; }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const backgroundOf = (el) => { const layers = []; for (let e = el; e; e = e.parentElement) {
      const bg = parse(getComputedStyle(e).backgroundColor); if (bg[3] > 0) layers.push(bg); if (bg[3] >= 1) break; }
    let out = [255, 255, 255, 1]; for (const layer of layers.reverse()) out = over(layer, out); return out; };
  const failures = []; const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement; const text = n.textContent.trim();
    if (!el || text === '' || seen.has(el)) continue; seen.add(el);
    if (el.closest('[disabled], [aria-disabled="true"], .Mui-disabled, [aria-hidden="true"], [hidden]')) continue;
    const style = getComputedStyle(el); const box = el.getBoundingClientRect();
    if (style.visibility !== 'visible' || Number(style.opacity) === 0 || box.width === 0 || box.height === 0) continue;
    const bg = backgroundOf(el); const fg = over(parse(style.color), bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a); const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize); const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    const required = large ? 3 : 4.5;
    if (ratio < required) failures.push({ text: text.slice(0, 60), ratio: Math.round(ratio * 100) / 100, required,
      color: style.color, background: 'rgba(' + bg.map((v) => Math.round(v * 100) / 100).join(', ') + ')' });
  }
  return failures;
})()`;

/** Fails when any visible text on the page is below WCAG 2.2 AA contrast. */
export async function assertContrast(page: Page, where: string): Promise<void> {
  const failures = await page.evaluate<LowContrast[]>(CONTRAST_SCRIPT);
  assert.deepEqual(failures, [], `${where}: text below WCAG AA contrast`);
}
