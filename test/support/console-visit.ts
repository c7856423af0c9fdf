// The Console in Chromium for the Overview, Metrics and Add-ons tests: sign-in that collects page
// errors, and a change started from a page.
import type { BrowserContext, Page } from 'playwright-core';
import { actionOutcome } from './console-browser.js';

// Chromium (whose page loads retry an ERR_NETWORK_CHANGED abort), the console's address and an
// action's outcome line are console-browser's.
export { actionOutcome, consoleBase, launchChromium } from './console-browser.js';

/**
 * A page signed in with `token`; confirm dialogs are accepted, and script errors and CSP refusals
 * are collected in `errors` (a page of the console must have none).
 */
export async function signIn(ctx: BrowserContext, base: string, token: string, errors: string[]): Promise<Page> {
  const p = await ctx.newPage();
  p.on('dialog', (d) => void d.accept());
  p.on('pageerror', (e) => errors.push(e.message));
  p.on('console', (m) => {
    if (m.type() === 'error' && /Content.Security.Policy|Refused/i.test(m.text())) errors.push(m.text());
  });
  await p.goto(`${base}/console/`);
  await p.fill('#token', token);
  await Promise.all([p.waitForURL(`${base}/console/`), p.click('button[type=submit]')]);
  return p;
}

/**
 * Starts a change with `click` and returns its outcome line: the box of the change before it (and
 * its outcome) is still on the page until the new one replaces it, so that is waited for first.
 */
export async function act(p: Page, click: () => Promise<void>, timeout = 180_000): Promise<string> {
  const before = await p.evaluate(() => document.querySelector('#action .action')?.getAttribute('data-action') ?? '');
  await click();
  await p.waitForFunction((old) => {
    const id = document.querySelector('#action .action')?.getAttribute('data-action');
    return id !== undefined && id !== null && id !== old;
  }, before, { timeout });
  return actionOutcome(p, timeout);
}
