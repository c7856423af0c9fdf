import test from 'ava';
import { access, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ago } from '../daemon/console/rack-view.js';
import { freePort } from './support/free-port.js';
import { nextVersionSource } from './support/next-version.js';
import { RackDaemon, ROOT } from './support/rack-daemon.js';
import { CHROMIUM, launchChromium } from './support/console-browser.js';


// The Console's Rack page in a real Chromium against a rackd started by bin/rackd (the launcher a
// switch needs), with a clone of this checkout plus one commit as the source to update from.
const SHOTS = join(ROOT, 'test', 'screenshots');
const LONG = 240_000;

let rack: RackDaemon;
let browser: Browser;
let page: Page;
let base: string;
let source: string;
let installed: string;
let next: string;
const pageErrors: string[] = [];


async function token(args: string[]): Promise<string> {
  const r = await rack.ssh(['tokens:create', ...args]);
  const t = /rack_[A-Za-z0-9_-]{43}/.exec(r.stdout)?.[0];
  if (r.code !== 0 || !t) throw new Error(`tokens:create: ${r.stderr}`);
  return t;
}

async function signIn(ctx: BrowserContext, secret: string): Promise<Page> {
  const p = await ctx.newPage();
  p.on('dialog', (d) => void d.accept());
  await p.goto(`${base}/console/`);
  await p.fill('#token', secret);
  await Promise.all([p.waitForURL(`${base}/console/`), p.click('button[type=submit]')]);
  return p;
}

test.before(async () => {
  // No skipping: without the browser the page is unproven, so the file fails.
  await access(CHROMIUM);
  await mkdir(SHOTS, { recursive: true });
  ({ dir: source, installed, next } = await nextVersionSource());
  rack = await RackDaemon.create({ RACK_SSH_PORT: String(await freePort()), RACK_HTTPS_PORT: 'off' }, { launcher: true });
  const created = await rack.ssh(['apps:create', 'shop']);
  if (created.code !== 0) throw new Error(created.stderr);
  base = `http://rack.localhost:${rack.httpPort}`;
  browser = await launchChromium();
  page = await signIn(await browser.newContext({ viewport: { width: 1200, height: 900 } }), await token(['console-admin']));
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content.Security.Policy|Refused/i.test(m.text())) pageErrors.push(m.text());
  });
});

test.after.always(async () => {
  await browser?.close();
  await rack?.destroy();
  if (source) await rm(join(source, '..'), { recursive: true, force: true });
});

test('ago: how long since, in the two largest units', (t) => {
  const now = Date.parse('2026-12-06T10:00:00Z');
  t.is(ago('2026-12-06T09:59:55Z', now), 'just now');
  t.is(ago('2026-12-06T09:55:50Z', now), '4m 10s ago');
  t.is(ago('2026-12-04T07:00:00Z', now), '2d 3h ago');
  t.is(ago('not a time', now), '-');
});

test.serial("an admin's Rack page: what runs, and the ledger", async (t) => {
  await page.click('nav a[href="/console/rack"]');
  await page.waitForURL(`${base}/console/rack`);
  const info = JSON.parse((await rack.ssh(['rack', '--json'])).stdout) as { version: string; commit: string };
  t.is(await page.locator('.rack-version').textContent(), info.version);
  t.is(await page.locator('.rack-commit').textContent(), installed);
  const rows = page.locator('tr.rack-release');
  t.is(await rows.count(), 1);
  t.is(await rows.first().getAttribute('aria-current'), 'true');
  t.regex((await rows.first().textContent()) ?? '', /r1[\s\S]*install[\s\S]*succeeded/);
  // Nothing to roll back to: the only entry is what runs.
  t.is(await page.locator('button.rollback').count(), 0);
  await page.screenshot({ path: join(SHOTS, 'rack.png'), fullPage: true });
});

test.serial('Check for update shows the answer: the source with one more commit has a newer rack; a bad ref is refused in one line', async (t) => {
  await page.fill('input[name=ref]', 'next');
  await page.fill('input[name=from]', source);
  await page.click('button.check');
  await page.waitForSelector('#rack-check .check-answer', { timeout: LONG });
  t.regex((await page.locator('#rack-check').textContent()) ?? '', /rack .*-next \(\w{7}\) is available \(branch next of .*, 1 commit ahead of/);
  await page.fill('input[name=ref]', '../../etc');
  await page.click('button.check');
  await page.waitForSelector('#rack-check .error');
  t.regex((await page.locator('#rack-check .error').textContent()) ?? '', /not a tag, branch or commit/);
  // Update with the same bad ref: refused at once, in the action box, before anything is fetched.
  await page.click('form.rack-update button[type=submit]');
  await page.waitForSelector('#action .error');
  t.regex((await page.locator('#action .error').textContent()) ?? '', /not a tag, branch or commit/);
  t.is(await page.locator('tr.rack-release').count(), 1, 'a check changes nothing');
});

test.serial('a token that is not an admin\'s has no Rack link and gets 403 on its pages', async (t) => {
  const p = await signIn(await browser.newContext(), await token(['shop-dev', '--app', 'shop']));
  t.is(await p.locator('nav a[href="/console/rack"]').count(), 0);
  for (const path of ['/console/rack', '/console/rack/panel']) {
    const answer = await p.goto(`${base}${path}`);
    t.is(answer?.status(), 403, path);
    t.regex((await p.locator('.error').textContent()) ?? '', /admin/);
  }
  const post = await p.evaluate(async () => (await fetch('/console/rack/check', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'ref=next' })).status);
  t.is(post, 403);
  await p.close();
});

test.serial('Update through the page: its live lines until the switch, then the ledger shows it succeeded; Roll back the same way', async (t) => {
  await page.goto(`${base}/console/rack`);
  await page.fill('input[name=ref]', 'next');
  await page.fill('input[name=from]', source);
  await page.click('form.rack-update button[type=submit]');
  await page.waitForFunction(() => /switches now/.test(document.querySelector('#action pre.live')?.textContent ?? ''), undefined, { timeout: LONG });
  const lines = (await page.locator('#action pre.live').textContent()) ?? '';
  for (const step of ['Fetching next', 'Installing dependencies', 'Building', 'Running its start-up checks']) t.true(lines.includes(`-----> ${step}`), step);
  await page.waitForFunction(() => /r2 succeeded/.test(document.querySelector('.ledger-state')?.textContent ?? ''), undefined, { timeout: LONG });
  t.regex((await page.locator('.rack-version').textContent()) ?? '', /-next$/);
  // The page's event stream is back, from the new rackd.
  await page.waitForSelector('#connection', { state: 'hidden', timeout: LONG });
  t.is(await page.locator('.rack-commit').textContent(), next);
  t.is(await page.locator('tr.rack-release[aria-current="true"]').getAttribute('data-release'), '2');
  // The steps of the entry are in its details.
  await page.click('tr[data-release="2"] summary');
  t.regex((await page.locator('tr[data-release="2"] details').textContent()) ?? '', /Steps: fetch [\d.]+s, checkout [\d.]+s, dependencies [\d.]+s, build [\d.]+s, check [\d.]+s, start [\d.]+s/);
  await page.screenshot({ path: join(SHOTS, 'rack-updated.png'), fullPage: true });

  await page.click('tr[data-release="1"] button.rollback');
  await page.waitForFunction(() => /r3 succeeded/.test(document.querySelector('.ledger-state')?.textContent ?? ''), undefined, { timeout: LONG });
  t.is(await page.locator('.rack-commit').textContent(), installed);
  t.like(JSON.parse((await rack.ssh(['rack', '--json'])).stdout), { commit: installed });
  t.deepEqual(pageErrors, []);
});
