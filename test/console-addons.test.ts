import test from 'ava';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { act, consoleBase, launchChromium, signIn } from './support/console-visit.js';
import { RackDaemon } from './support/rack-daemon.js';

// The Add-ons tab in a real Chromium against a real rackd and Docker: a Postgres made, backed up,
// restored, detached and attached from the page (the add-on images are those scripts/setup.sh built).
let rack: RackDaemon;
let browser: Browser;
let ctx: BrowserContext;
let page: Page;
let base: string;
const errors: string[] = [];
const LONG = 240_000;

async function ssh(args: string[]): Promise<string> {
  const r = await rack.ssh(args);
  if (r.code !== 0) throw new Error(`ssh ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const card = () => page.locator('#addons li.addon[data-addon="shop-postgres"]');

test.before(async () => {
  rack = await RackDaemon.create();
  const push = await rack.push(await rack.appRepo('node-env', 'shop'));
  if (push.code !== 0) throw new Error(push.stderr);
  base = await consoleBase(rack);
  browser = await launchChromium();
  ctx = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  // An app's own token: add-ons follow the same role rules as over ssh.
  page = await signIn(ctx, base, await rack.createToken('shop-dev', ['--app', 'shop']), errors);
});

test.after.always(async () => {
  await browser?.close();
  await rack?.destroy();
});

test.serial('create a Postgres from the Add-ons tab: its lines arrive live, then its version, health and size', async (t) => {
  await page.goto(`${base}/console/apps/shop/addons`);
  t.regex((await page.locator('#addons').textContent()) ?? '', /shop has no add-ons yet/);
  await page.selectOption('form.addon-create select[name="kind"]', 'postgres');
  t.regex(await act(page, () => page.click('form.addon-create button[type="submit"]'), LONG), /^Done/);
  t.regex((await page.locator('#action pre.live').textContent()) ?? '', /shop-postgres/);
  await card().waitFor({ timeout: LONG });
  t.regex((await card().locator('.badge').first().textContent()) ?? '', /^postgres 15/);
  t.regex((await card().locator('.meta').textContent()) ?? '', /as DATABASE_URL · size \d/);
  // Health comes from Docker's check: polled until the page shows it healthy.
  const end = Date.now() + LONG;
  while ((await card().locator('.addon-status').textContent()) !== 'healthy' && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 1000));
    await page.reload();
  }
  t.is(await card().locator('.addon-status').textContent(), 'healthy');
  t.regex(JSON.parse(await ssh(['config', '-a', 'shop', '--json'])).DATABASE_URL as string, /^postgres:\/\//);
  t.deepEqual(errors, []);
});

test.serial('take a backup, see it listed, and restore it (a safety backup is taken first)', async (t) => {
  await page.goto(`${base}/console/apps/shop/addons`);
  t.regex(await act(page, () => card().locator('button:text-is("Take a backup")').click(), LONG), /^Done/);
  await page.waitForFunction(() => document.querySelector('li.addon[data-addon="shop-postgres"] tr[data-backup="b1"]') !== null, undefined, { timeout: LONG });
  await card().locator('details summary').click();
  t.regex((await card().locator('tr[data-backup="b1"]').textContent()) ?? '', /b1.*manual/s);
  t.regex(await act(page, () => card().locator('tr[data-backup="b1"] button:text-is("Restore")').click(), LONG), /^Done/);
  t.regex((await page.locator('#action pre.live').textContent()) ?? '', /Restored shop-postgres/);
  const backups = JSON.parse(await ssh(['addons:backups', 'shop-postgres', '--json'])) as { id: string }[];
  t.deepEqual(backups.map((b) => b.id).sort(), ['b1', 'b2']);
  t.deepEqual(errors, []);
});

test.serial('detach, then attach again under another alias', async (t) => {
  await page.goto(`${base}/console/apps/shop/addons`);
  t.regex(await act(page, () => card().locator('button:text-is("Detach")').click(), LONG), /^Done/);
  await page.waitForFunction(() => document.querySelector('li.addon[data-addon="shop-postgres"]') === null, undefined, { timeout: LONG });
  t.false('DATABASE_URL' in (JSON.parse(await ssh(['config', '-a', 'shop', '--json'])) as object));
  await page.selectOption('form.addon-attach select[name="name"]', 'shop-postgres');
  await page.fill('form.addon-attach input[name="alias"]', 'MAIN_DB');
  t.regex(await act(page, () => page.click('form.addon-attach button[type="submit"]'), LONG), /^Done/);
  await card().waitFor({ timeout: LONG });
  t.regex((await card().locator('.meta').textContent()) ?? '', /as MAIN_DB_URL/);
  t.true('MAIN_DB_URL' in (JSON.parse(await ssh(['config', '-a', 'shop', '--json'])) as object));
  t.deepEqual(errors, []);
});

test.serial('bad input is one clear line; a deploy-only token is told why it sees no add-ons and may change none', async (t) => {
  await page.goto(`${base}/console/apps/shop/addons`);
  await page.selectOption('form.addon-create select[name="kind"]', 'redis');
  await page.fill('form.addon-create input[name="as"]', 'Bad Name!');
  await page.click('form.addon-create button[type="submit"]');
  await page.waitForSelector('#action .error');
  t.regex((await page.locator('#action .error').textContent()) ?? '', /invalid add-on name "Bad Name!"/);
  const deployCtx = await browser.newContext();
  try {
    const p = await signIn(deployCtx, base, await rack.createToken('ci', ['--app', 'shop', '--deploy-only']), []);
    await p.goto(`${base}/console/apps/shop/addons`);
    t.regex((await p.locator('#addons').textContent()) ?? '', /deploy-only/);
    t.is(await p.locator('form.addon-create').count(), 0);
    const status = await p.evaluate(async () => {
      const r = await fetch('/console/apps/shop/addons/backup', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'name=shop-postgres' });
      return r.status;
    });
    t.is(status, 403);
  } finally {
    await deployCtx.close();
  }
});
