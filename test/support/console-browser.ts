import { access } from 'node:fs/promises';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { RackDaemon } from './rack-daemon.js';

/** Debian's Chromium, driven by playwright-core. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Chromium, resolving rack's own host name (or what `hostRules` maps) to this machine, its page loads
 * retried on ERR_NETWORK_CHANGED. Throws (never skips) when it is missing.
 */
export async function launchChromium(hostRules = 'MAP rack.localhost 127.0.0.1'): Promise<Browser> {
  await access(CHROMIUM);
  return retryingNavigation(await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', `--host-resolver-rules=${hostRules}`] }));
}

/**
 * Chromium aborts a page load with ERR_NETWORK_CHANGED when an interface comes or goes, and on a
 * machine where Docker makes networks (every rackd of a full run does) that happens under a test's
 * feet. A `goto` that meets it is made again (a few times), on every page of the browser's contexts;
 * any other failure is the test's.
 */
function retryingNavigation(browser: Browser): Browser {
  const patch = (page: Page) => {
    const goto = page.goto.bind(page);
    page.goto = async (url, opts) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await goto(url, opts);
        } catch (err) {
          if (attempt >= 5 || !/ERR_NETWORK_CHANGED/.test(String(err))) throw err;
        }
      }
    };
  };
  const newContext = browser.newContext.bind(browser);
  browser.newContext = async (opts) => {
    const ctx = await newContext(opts);
    ctx.on('page', patch);
    return ctx;
  };
  const newPage = browser.newPage.bind(browser);
  browser.newPage = async (opts) => {
    const page = await newPage(opts);
    patch(page);
    return page;
  };
  return browser;
}

/** The console through the router's public port, at rack's own host name (as a browser reaches it). */
export async function consoleBase(rack: RackDaemon): Promise<string> {
  const probe = await rack.getHost('rack.localhost', '/console/sign-in');
  if (probe.status !== 200) throw new Error(`the router does not forward rack.localhost: ${probe.status} ${probe.body.slice(0, 200)}`);
  return `http://rack.localhost:${rack.httpPort}`;
}

/** A page of `ctx` signed in with the token, on the apps list. Confirm dialogs are accepted. */
export async function signIn(ctx: BrowserContext, base: string, secret: string): Promise<Page> {
  const p = await ctx.newPage();
  p.on('dialog', (d) => void d.accept());
  await p.goto(`${base}/console/`);
  await p.fill('#token', secret);
  await Promise.all([p.waitForURL(`${base}/console/`), p.click('button[type=submit]')]);
  return p;
}

/**
 * The action box's outcome line, once the action has ended. A request that never reached rack (the
 * page says so in the box) fails at once, with that, instead of waiting for an outcome.
 */
export async function actionOutcome(p: Page, timeout = 180_000): Promise<string> {
  await p.waitForFunction(() => (document.querySelector('#action [data-outcome]')?.textContent ?? '') !== '' || document.querySelector('#action .error') !== null, undefined, { timeout });
  const lost = p.locator('#action .error');
  if ((await lost.count()) > 0) throw new Error(`the action has no outcome: ${await lost.textContent()}`);
  return (await p.locator('#action [data-outcome]').textContent()) ?? '';
}
