// The Console in Chromium for the Overview, Metrics and Add-ons tests: sign-in that collects page errors, and
// navigation that retries a load aborted by a Docker network change (ERR_NETWORK_CHANGED).
import { access } from 'node:fs/promises';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { RackDaemon } from './rack-daemon.js';

/** Debian's Chromium, driven by playwright-core; a Console test fails (not skips) without it. */
export const CHROMIUM = '/usr/bin/chromium';

/** The console through the router's public port, at rack's own host name (as a browser reaches it). */
export async function consoleBase(rack: RackDaemon): Promise<string> {
  const probe = await rack.getHost('rack.localhost', '/console/sign-in');
  if (probe.status !== 200) throw new Error(`the router does not forward rack.localhost: ${probe.status} ${probe.body.slice(0, 200)}`);
  return `http://rack.localhost:${rack.httpPort}`;
}

export async function launchChromium(): Promise<Browser> {
  await access(CHROMIUM);
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--host-resolver-rules=MAP rack.localhost 127.0.0.1'] });
}

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

/** Waits for the action box's outcome line (the end of a change started from the page) and returns it. */
export async function actionOutcome(p: Page, timeout = 180_000): Promise<string> {
  await p.waitForFunction(() => (document.querySelector('#action [data-outcome]')?.textContent ?? '') !== '', undefined, { timeout });
  return (await p.locator('#action [data-outcome]').textContent()) ?? '';
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

/**
 * `page.goto`, again when Chromium gave up because the machine's network changed under it (other
 * work on this machine makes Docker networks, and Chromium aborts a navigation when one appears).
 */
export async function visit(p: Page, url: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await p.goto(url);
      return;
    } catch (err) {
      if (attempt >= 5 || !/ERR_NETWORK_CHANGED/.test(String(err))) throw err;
    }
  }
}
