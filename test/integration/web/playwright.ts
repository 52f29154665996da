import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * playwright-core is a devDependency of web/ (the root package does not carry browser tooling),
 * so it is loaded from there; these are the parts of its API the tests use.
 */
export interface Locator {
  click(): Promise<void>;
  fill(value: string): Promise<void>;
  inputValue(): Promise<string>;
  textContent(): Promise<string | null>;
  count(): Promise<number>;
  first(): Locator;
  or(other: Locator): Locator;
  waitFor(options?: { timeout?: number; state?: 'visible' | 'attached' | 'detached' }): Promise<void>;
  setInputFiles(file: { name: string; mimeType: string; buffer: Buffer }): Promise<void>;
  getByRole(role: string, options?: { name?: string | RegExp; exact?: boolean; level?: number }): Locator;
  getByText(text: string | RegExp, options?: { exact?: boolean }): Locator;
  filter(options: { hasText: string | RegExp }): Locator;
  getByTestId(id: string): Locator;
  getByLabel(label: string | RegExp, options?: { exact?: boolean }): Locator;
}

export interface Download {
  path(): Promise<string | null>;
}

export interface Request {
  url(): string;
  method(): string;
  postData(): string | null;
}

export interface APIResponse {
  json(): Promise<unknown>;
}

export interface Route {
  fetch(): Promise<APIResponse>;
  fulfill(options: { response?: APIResponse; json?: unknown; status?: number }): Promise<void>;
}

export interface Page
  extends Omit<
    Locator,
    | 'click'
    | 'fill'
    | 'inputValue'
    | 'textContent'
    | 'count'
    | 'first'
    | 'or'
    | 'waitFor'
    | 'setInputFiles'
    | 'filter'
  > {
  goto(path: string): Promise<unknown>;
  getByLabel(label: string | RegExp): Locator;
  waitForURL(url: RegExp): Promise<void>;
  waitForEvent(event: 'download'): Promise<Download>;
  waitForEvent(
    event: 'console',
    options: { predicate: (message: { type(): string; text(): string }) => boolean },
  ): Promise<unknown>;
  screenshot(options: { path: string; fullPage?: boolean }): Promise<Buffer>;
  setViewportSize(size: { width: number; height: number }): Promise<void>;
  setDefaultTimeout(ms: number): void;
  readonly keyboard: Keyboard;
  emulateMedia(options: { colorScheme: 'light' | 'dark' }): Promise<void>;
  /** Evaluates an expression in the page (a string: this package has no DOM types). */
  evaluate<T>(expression: string): Promise<T>;
  on(event: 'console', listener: (message: { type(): string; text(): string }) => void): void;
  on(event: 'pageerror', listener: (error: Error) => void): void;
  on(event: 'request', listener: (request: Request) => void): void;
  on(event: 'dialog', listener: (dialog: { message(): string; accept(): Promise<void> }) => void): void;
  route(
    url: string | RegExp,
    handler: (route: Route) => Promise<void>,
    options?: { times?: number },
  ): Promise<void>;
}

export interface CdpSession {
  send(method: string, params?: Record<string, unknown>): Promise<unknown>;
  detach(): Promise<void>;
}

export interface Keyboard {
  press(key: string): Promise<void>;
  type(text: string): Promise<void>;
}

export interface BrowserContext {
  pages(): Page[];
  newCDPSession(page: Page): Promise<CdpSession>;
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

interface Chromium {
  launchPersistentContext(userDataDir: string, options: Record<string, unknown>): Promise<BrowserContext>;
}

const WEB = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'web');

/** Chromium's driver from web/node_modules, or undefined when web's dependencies are not installed. */
export function loadChromium(): Chromium | undefined {
  if (!existsSync(join(WEB, 'node_modules', 'playwright-core'))) return undefined;
  const require = createRequire(join(WEB, 'package.json'));
  return (require('playwright-core') as { chromium: Chromium }).chromium;
}
