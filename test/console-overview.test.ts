import test from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { act, consoleBase, launchChromium, signIn } from './support/console-visit.js';
import { CONSOLE_PAGES, pagePath } from './support/console-pages.js';
import { commitFile, RackDaemon, ROOT } from './support/rack-daemon.js';
import { TestCa } from './support/test-certs.js';

// The Overview, Metrics, Domains (HTTPS) and Logs pages in a real Chromium against a real rackd:
// one app deployed with a web process that answers real traffic (so the charts have data) and a
// worker that crashes on start (so the Overview has a crash loop to show).
const LONG = 180_000;

let rack: RackDaemon;
let browser: Browser;
let ctx: BrowserContext;
let page: Page;
let base: string;
const errors: string[] = [];

async function ssh(args: string[]): Promise<string> {
  const r = await rack.ssh(args);
  if (r.code !== 0) throw new Error(`ssh ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Polls `check` until it holds, with a generous overall bound (the machine is shared and slow). */
async function until(what: string, check: () => Promise<boolean>, boundMs = LONG): Promise<void> {
  const end = Date.now() + boundMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

interface MetricsJson {
  total: { requests: number };
  points: { requests: number; cpu: number | null; memory: number | null }[];
}

test.before(async () => {
  rack = await RackDaemon.create();
  const dir = await rack.appRepo('node-env', 'shop');
  await commitFile(dir, 'Procfile', 'web: node server.js\nworker: node -e "setTimeout(() => process.exit(3), 4000)"\n', 'a worker that crashes');
  const push = await rack.push(dir);
  if (push.code !== 0) throw new Error(push.stderr);
  await ssh(['logs:router', 'on', '-a', 'shop']);
  // The worker stays up through the settle period (so the scale takes it), then crashes again and again.
  const scaled = await rack.ssh(['ps:scale', 'worker=1', '-a', 'shop']);
  let lastPs = '';
  // Real traffic until the metrics have a sample with requests and one with the processes' CPU.
  await until('a metric sample with requests and CPU', async () => {
    for (let i = 0; i < 20; i++) await rack.get('shop', `/env/FINDME${i}`);
    const m = JSON.parse(await ssh(['metrics', '-a', 'shop', '--json'])) as MetricsJson;
    return m.total.requests > 0 && m.points.some((p) => p.cpu !== null && p.memory !== null);
  });
  await until('the worker in a crash loop', async () => {
    lastPs = await ssh(['ps', '-a', 'shop', '--json']);
    const ps = JSON.parse(lastPs) as { type: string; state: string }[];
    return ps.some((p) => p.type === 'worker' && /crash/.test(p.state));
  }).catch((err: Error) => {
    throw new Error(`${err.message}; ps:scale said ${scaled.stdout}${scaled.stderr}; ps said ${lastPs}`);
  });
  base = await consoleBase(rack);
  browser = await launchChromium();
  ctx = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  page = await signIn(ctx, base, await rack.createToken('console-admin'), errors);
});

test.after.always(async () => {
  await browser?.close();
  await rack?.destroy();
});

test.serial('the app root is its Overview: processes with the crash loop, the current release, add-ons, domains, changes and charts with data', async (t) => {
  // The worker is up for 4 s between crashes: the page is loaded again until it shows one.
  await until('the Overview showing the crashed worker', async () => {
    await page.goto(`${base}/console/apps/shop`);
    return (await page.locator('section[aria-labelledby="ov-processes"] li.trouble').count()) > 0;
  });
  t.is(new URL(page.url()).pathname, '/console/apps/shop', 'not sent on to Releases');
  t.is(await page.locator('.tabs a[aria-current="page"]').textContent(), 'Overview');
  const processes = page.locator('section[aria-labelledby="ov-processes"]');
  t.regex((await processes.locator('li.trouble').textContent()) ?? '', /worker .*(crash-loop|crashed)/);
  t.regex((await processes.textContent()) ?? '', /web 1\/1 up/);
  const current = (JSON.parse(await ssh(['releases', '-a', 'shop', '--json'])) as { version: number; current: boolean }[]).find((r) => r.current);
  t.is(await page.locator('section[aria-labelledby="ov-release"] a.version').textContent(), `v${current?.version}`);
  t.regex((await page.locator('section[aria-labelledby="ov-domains"]').textContent()) ?? '', /shop\.localhost\s+HTTP only/);
  t.regex((await page.locator('section[aria-labelledby="ov-audit"]').textContent()) ?? '', /ps:scale/);
  t.regex((await page.locator('section[aria-labelledby="ov-addons"]').textContent()) ?? '', /None/);
  // Five charts, each with data and its text alternative.
  t.is(await page.locator('figure.chart svg[role="img"]').count(), 5);
  t.notRegex((await page.locator('#chart-requests-small desc').textContent()) ?? '', /No data/);
  t.regex((await page.locator('#chart-requests-small desc').textContent()) ?? '', /req\/s: latest/);
  t.regex((await page.locator('#chart-cpu-small path.line').getAttribute('d')) ?? '', /^M/);
  t.true((await page.locator('#chart-memory-small tbody tr').count()) > 0);
  t.deepEqual(errors, []);
});

test.serial('the range switch and the Metrics tab: a week is read as at most 300 points per chart', async (t) => {
  await page.goto(`${base}/console/apps/shop/`);
  await Promise.all([page.waitForURL(/range=7d/), page.click('nav.ranges a:text-is("7d")')]);
  t.is(await page.locator('nav.ranges a[aria-current="true"]').textContent(), '7d');
  t.notRegex((await page.locator('#chart-requests-small desc').textContent()) ?? '', /No data/);
  await page.click('.tabs a:text-is("Metrics")');
  await page.waitForURL(/\/metrics$/);
  t.is(await page.locator('figure.chart-large').count(), 5);
  await page.goto(`${base}/console/apps/shop/metrics?range=7d`);
  t.true((await page.locator('#chart-requests-large tbody tr').count()) <= 300);
  // What the page reads: `metrics --points`, spans merged so the counts still add up.
  const all = JSON.parse(await ssh(['metrics', '-a', 'shop', '--since', '7d', '--json'])) as MetricsJson;
  const merged = JSON.parse(await ssh(['metrics', '-a', 'shop', '--since', '7d', '--points', '3', '--json'])) as MetricsJson;
  t.true(merged.points.length <= 3);
  t.is(merged.points.reduce((s, p) => s + p.requests, 0), all.points.reduce((s, p) => s + p.requests, 0));
  const bad = await rack.ssh(['metrics', '-a', 'shop', '--points', 'lots']);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /--points takes a count from 1 to 10000/);
  t.deepEqual(errors, []);
});

test.serial("Domains: each host's certificate (source, expiry, state), the HTTPS switches, and where to point DNS", async (t) => {
  await ssh(['domains:add', 'www.shop.test', '-a', 'shop']);
  const ca = await TestCa.create();
  const leaf = await ca.leaf({ names: ['www.shop.test'] });
  const added = await rack.ssh(['certs:add', 'www.shop.test'], { input: leaf.cert + leaf.key });
  t.is(added.code, 0, added.stderr);
  await page.goto(`${base}/console/apps/shop/domains`);
  const row = (host: string) => page.locator(`#https tr[data-host="${host}"]`);
  t.is(await row('www.shop.test').locator('.cert-source').textContent(), 'uploaded');
  t.regex((await row('www.shop.test').locator('.cert-status').textContent()) ?? '', /^ok, \d+ days left/);
  t.regex((await row('www.shop.test').locator('time').getAttribute('datetime')) ?? '', /^\d{4}-/);
  t.is(await row('shop.localhost').locator('.cert-source').textContent(), 'none');
  t.is(await page.locator('#https .dns-target').textContent(), 'shop.localhost');
  const state = (name: string) => page.locator(`#https li[data-switch="${name}"] .switch-state`);
  t.is(await state('redirect').textContent(), 'off');
  t.regex(await act(page, () => page.click('#https li[data-switch="redirect"] button')), /^Done/);
  await page.waitForFunction(() => document.querySelector('#https li[data-switch="redirect"] .switch-state')?.textContent === 'on', undefined, { timeout: LONG });
  const app = (JSON.parse(await ssh(['apps', '--json'])) as { name: string; https?: { redirect?: boolean } }[]).find((a) => a.name === 'shop');
  t.is(app?.https?.redirect, true);
  // The router now answers plain HTTP on the host with a certificate with a redirect.
  const plain = await rack.getHost('www.shop.test', '/');
  t.is(plain.status, 308);
  t.deepEqual(errors, []);
});

test.serial('Logs: a search in a time range, and a download of every line it finds as a text file', async (t) => {
  const untilIso = new Date(Date.now() + 60_000).toISOString().slice(0, 19);
  await page.goto(`${base}/console/apps/shop/logs`);
  await page.fill('input[name="since"]', '1h');
  await page.fill('input[name="until"]', untilIso);
  await page.fill('input[name="grep"]', 'FINDME1');
  await Promise.all([page.waitForURL(/grep=FINDME1/), page.click('form.log-search button[type=submit]')]);
  const shown = (await page.locator('#log-lines span').allTextContents()).map((l) => l.trim());
  t.true(shown.length > 0);
  t.true(shown.every((l) => l.includes('FINDME1')));
  const href = await page.locator('a.download').getAttribute('href');
  t.regex(href ?? '', /\/console\/apps\/shop\/logs\/download\?since=1h&until=.*&grep=FINDME1/);
  // The browser's own download: a file holding exactly the lines the page shows.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('a.download')]);
  t.is(download.suggestedFilename(), 'shop-logs.txt');
  const lines = (await readFile(await download.path(), 'utf8')).split('\n').filter((l) => l !== '');
  t.deepEqual(lines, shown);
  const fetched = (url: string) =>
    page.evaluate(async (u) => {
      const r = await fetch(u);
      return { status: r.status, type: r.headers.get('content-type'), disposition: r.headers.get('content-disposition'), text: await r.text() };
    }, url);
  const answer = await fetched(href!);
  t.regex(answer.type ?? '', /^text\/plain/);
  t.is(answer.disposition, 'attachment; filename="shop-logs.txt"');
  // A bad time is one clear line, not a file.
  const bad = await fetched('/console/apps/shop/logs/download?since=yesterday');
  t.is(bad.status, 400);
  t.regex(bad.text, /--since takes a duration/);
  t.deepEqual(errors, []);
});

test.serial('a deploy-only token sees the Overview without the parts it may not read', async (t) => {
  const deployCtx = await browser.newContext();
  try {
    const p = await signIn(deployCtx, base, await rack.createToken('ci', ['--app', 'shop', '--deploy-only']), errors);
    await p.goto(`${base}/console/apps/shop/`);
    t.is(await p.locator('section[aria-labelledby="ov-release"]').count(), 1);
    t.is(await p.locator('section[aria-labelledby="ov-addons"]').count(), 0);
  } finally {
    await deployCtx.close();
  }
});

test.serial('axe-core finds no serious or critical violation on these pages, desktop or phone width', async (t) => {
  const axe = await readFile(join(ROOT, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
  for (const viewport of [{ width: 1100, height: 900 }, { width: 390, height: 844 }]) {
    await page.setViewportSize(viewport);
    // This file's pages, with a week of metrics and an add-on (console-axe.test.ts checks every page).
    for (const p of CONSOLE_PAGES.filter((c) => /^app-(overview|metrics|addons|domains|logs-search)/.test(c.name))) {
      await page.goto(`${base}${pagePath(p, 'shop')}`);
      // The charts' data tables and the backups are checked too.
      await page.evaluate(() => document.querySelectorAll('details').forEach((d) => (d.open = true)));
      // Evaluated by the test's own channel, not as a page script: the page's CSP stays as it is.
      await page.evaluate(axe);
      const found = await page.evaluate(async () => {
        const results = await (window as unknown as { axe: { run: () => Promise<{ violations: { id: string; impact: string; nodes: unknown[] }[] }> } }).axe.run();
        return results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.nodes.length})`);
      });
      t.deepEqual(found, [], `${p.name} at ${viewport.width} px`);
    }
  }
  await page.setViewportSize({ width: 1100, height: 900 });
});
