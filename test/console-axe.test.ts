import test from 'ava';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Browser } from 'playwright-core';
import { consoleBase, launchChromium } from './support/console-browser.js';
import { CONSOLE_PAGES, pagePath } from './support/console-pages.js';
import { consoleShowcase, type ConsoleShowcase } from './support/console-showcase.js';

// axe-core (from npm) on every Console page (test/support/console-pages.ts), light and dark:
// no serious or critical violation. Chromium, a real rackd with deployed apps.
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

interface Violation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

let show: ConsoleShowcase;
let browser: Browser;

test.before(async () => {
  browser = await launchChromium();
  show = await consoleShowcase();
});

test.after.always(async () => {
  await browser?.close();
  await show?.rack.destroy();
});

for (const scheme of ['light', 'dark'] as const) {
  test.serial(`no serious or critical axe violation on any Console page (${scheme})`, async (t) => {
    const axe = await readFile(AXE, 'utf8');
    const base = await consoleBase(show.rack);
    // axe is injected as a script: the pages' own Content-Security-Policy would refuse it.
    const ctx = await browser.newContext({ bypassCSP: true, colorScheme: scheme, viewport: { width: 1280, height: 900 } });
    try {
      const signedIn = await ctx.newPage();
      await signedIn.goto(`${base}/console/sign-in`);
      await signedIn.fill('#token', show.adminToken);
      await Promise.all([signedIn.waitForURL(`${base}/console/`), signedIn.click('button[type=submit]')]);
      const found: string[] = [];
      for (const p of CONSOLE_PAGES) {
        // Signed-out pages in a context of their own: the admin's cookie would send them on.
        const tab = p.signedOut ? await (await browser.newContext({ bypassCSP: true, colorScheme: scheme })).newPage() : signedIn;
        try {
          const res = await tab.goto(`${base}${pagePath(p, show.app, show.build)}`);
          t.is(res?.status(), 200, p.name);
          await tab.addScriptTag({ content: axe });
          const violations = await tab.evaluate(async () => {
            const run = (window as unknown as { axe: { run: (ctx: Document, opts: unknown) => Promise<{ violations: Violation[] }> } }).axe.run;
            return (await run(document, { resultTypes: ['violations'] })).violations;
          });
          for (const v of violations) {
            if (v.impact === 'serious' || v.impact === 'critical') found.push(`${p.name}: ${v.id} (${v.impact}) ${v.help}: ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
          }
        } finally {
          if (p.signedOut) await tab.context().close();
        }
      }
      t.deepEqual(found, []);
    } finally {
      await ctx.close();
    }
  });
}

test.serial('every Console page fits a 390 px phone: only a table box scrolls sideways, never the page', async (t) => {
  const base = await consoleBase(show.rack);
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 } });
  try {
    const signedIn = await ctx.newPage();
    await signedIn.goto(`${base}/console/sign-in`);
    await signedIn.fill('#token', show.adminToken);
    await Promise.all([signedIn.waitForURL(`${base}/console/`), signedIn.click('button[type=submit]')]);
    const wide: string[] = [];
    for (const p of CONSOLE_PAGES) {
      const other = p.signedOut ? await browser.newContext({ viewport: { width: 390, height: 844 } }) : undefined;
      const tab = other ? await other.newPage() : signedIn;
      try {
        await tab.goto(`${base}${pagePath(p, show.app, show.build)}`);
        const width = await tab.evaluate(() => document.documentElement.scrollWidth);
        if (width > 390) wide.push(`${p.name}: ${width} px`);
      } finally {
        await other?.close();
      }
    }
    t.deepEqual(wide, []);
  } finally {
    await ctx.close();
  }
});
