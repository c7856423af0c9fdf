/**
 * Saves every Console page (test/support/console-pages.ts) at 1280 px and 390 px wide, light
 * scheme, to docs/console/NAME-1280.png and NAME-390.png: a rackd with deployed apps
 * (test/support/console-showcase.ts), signed in as an admin, in Debian's Chromium.
 *   npm run console:screenshots
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { consoleBase, launchChromium, signIn } from '../test/support/console-browser.js';
import { CONSOLE_PAGES, pagePath } from '../test/support/console-pages.js';
import { consoleShowcase } from '../test/support/console-showcase.js';
import { ROOT } from '../test/support/rack-daemon.js';

const WIDTHS = [1280, 390];
const out = join(ROOT, 'docs', 'console');

await mkdir(out, { recursive: true });
const browser = await launchChromium();
const show = await consoleShowcase();
try {
  const base = await consoleBase(show.rack);
  for (const width of WIDTHS) {
    const admin = await browser.newContext({ viewport: { width, height: 900 } });
    const signedIn = await signIn(admin, base, show.adminToken);
    for (const p of CONSOLE_PAGES) {
      const ctx = p.signedOut ? await browser.newContext({ viewport: { width, height: 900 } }) : admin;
      const tab = p.signedOut ? await ctx.newPage() : signedIn;
      const res = await tab.goto(`${base}${pagePath(p, show.app, show.build)}`);
      if (res?.status() !== 200) throw new Error(`${p.name}: ${res?.status()}`);
      const file = join(out, `${p.name}-${width}.png`);
      await tab.screenshot({ path: file, fullPage: true });
      console.log(file);
      if (p.signedOut) await ctx.close();
    }
    await admin.close();
  }
} finally {
  await browser.close();
  await show.rack.destroy();
}
