import test from 'ava';
import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { Agent, request } from 'undici';
import { html } from '../daemon/console/html-template.js';
import { commitFile, RackDaemon, ROOT } from './support/rack-daemon.js';
import { actionOutcome, CHROMIUM, launchChromium } from './support/console-browser.js';

// The Console in a real Chromium (Debian's package, driven by playwright-core), against a real
// rackd and Docker: one rackd, one browser, one deploy of an app that prints its environment.
const XSS = '<img src=x onerror=alert(1)>';
const SHOTS = join(ROOT, 'test', 'screenshots');
const LONG = 120_000;
/** The session cookie: `__Host-` holds at http://rack.localhost too (a secure context to the browser). */
const SESSION = '__Host-rack_session';

let rack: RackDaemon;
let browser: Browser;
let admin: BrowserContext;
let page: Page;
let base: string;
let adminToken: string;
let shopToken: string;
const alerts: string[] = [];
/** Content-Security-Policy refusals and script errors seen by the admin's pages. */
const pageErrors: string[] = [];

async function ssh(args: string[]): Promise<string> {
  const r = await rack.ssh(args);
  if (r.code !== 0) throw new Error(`ssh ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function token(args: string[]): Promise<string> {
  const t = /rack_[A-Za-z0-9_-]{43}/.exec(await ssh(['tokens:create', ...args]))?.[0];
  if (!t) throw new Error('no token printed');
  return t;
}

async function releases(app: string): Promise<{ version: number; current: boolean; status: string }[]> {
  return JSON.parse(await ssh(['releases', '-a', app, '--json'])) as { version: number; current: boolean; status: string }[];
}

/** The console through the router's public port, at rack's own host name (as a browser reaches it). */
async function consoleBase(): Promise<string> {
  const probe = await rack.getHost('rack.localhost', '/console/sign-in');
  if (probe.status !== 200) throw new Error(`the router does not forward rack.localhost: ${probe.status} ${probe.body.slice(0, 200)}`);
  return `http://rack.localhost:${rack.httpPort}`;
}

async function signIn(ctx: BrowserContext, secret: string): Promise<Page> {
  const p = await ctx.newPage();
  p.on('dialog', (d) => {
    if (d.type() !== 'confirm') alerts.push(d.message());
    void d.accept();
  });
  await p.goto(`${base}/console/`);
  await p.fill('#token', secret);
  await Promise.all([p.waitForURL(`${base}/console/`), p.click('button[type=submit]')]);
  return p;
}

async function shot(p: Page, name: string): Promise<void> {
  await p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

test.before(async () => {
  // No skipping: without the browser the console is unproven, so the file fails.
  await access(CHROMIUM);
  await mkdir(SHOTS, { recursive: true });
  rack = await RackDaemon.create();
  await ssh(['apps:create', 'other']);
  const dir = await rack.appRepo('node-env', 'shop');
  await commitFile(dir, 'NOTES', 'x', `Release notes ${XSS}`);
  const push = await rack.push(dir);
  if (push.code !== 0) throw new Error(push.stderr);
  await ssh(['config:set', 'MARK=two', '-a', 'shop']);
  adminToken = await token(['console-admin']);
  shopToken = await token(['shop-dev', '--app', 'shop']);
  base = await consoleBase();
  browser = await launchChromium();
  admin = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  page = await signIn(admin, adminToken);
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content.Security.Policy|Refused/i.test(m.text())) pageErrors.push(m.text());
  });
});

test.after.always(async () => {
  await browser?.close();
  await rack?.destroy();
});

test.serial('sign in with a token: the apps list shows the apps', async (t) => {
  await page.waitForSelector('a.app-name');
  const names = await page.locator('a.app-name').allTextContents();
  t.deepEqual(names.sort(), ['other', 'shop']);
  const cookie = (await admin.cookies()).find((c) => c.name === SESSION);
  t.truthy(cookie);
  t.true(cookie!.httpOnly);
  t.is(cookie!.sameSite, 'Strict');
  t.true(cookie!.secure);
  // A browser at rack's root lands in the console; API clients still get the JSON index there.
  await page.goto(`${base}/`);
  t.is(new URL(page.url()).pathname, '/console/');
  t.regex((await rack.getHost('rack.localhost', '/')).body, /"api"/);
  await shot(page, 'apps');
});

test.serial('the Releases tab marks the current release', async (t) => {
  await page.goto(`${base}/console/apps/shop/releases`);
  const current = page.locator('li.release[aria-current="true"]');
  t.is(await current.count(), 1);
  t.is(await current.getAttribute('data-version'), '2');
  t.is(await page.locator('li.release[data-version="1"] button.rollback').count(), 1);
  await shot(page, 'releases');
  await page.screenshot({ path: join(ROOT, 'docs', 'console-releases.png') });
});

test.serial('a commit message holding markup renders as text', async (t) => {
  const subject = page.locator('li.release[data-version="1"] q.subject');
  t.is(await subject.textContent(), `Release notes ${XSS}`);
  t.is(await page.locator('main img').count(), 0);
  t.deepEqual(alerts, []);
});

test.serial('Rollback to an older release: the app serves it, and the new release appears without a reload', async (t) => {
  t.is((await rack.get('shop', '/env/MARK')).body, 'two');
  await page.evaluate(() => ((window as unknown as { marker: number }).marker = 1));
  await page.click('li.release[data-version="1"] button.rollback');
  t.regex(await actionOutcome(page, LONG), /^Done/);
  await page.waitForSelector('li.release[data-version="3"][aria-current="true"]', { timeout: LONG });
  // The same document: the list updated itself.
  t.is(await page.evaluate(() => (window as unknown as { marker?: number }).marker), 1);
  t.regex(await page.locator('#action pre.live').textContent() ?? '', /Rollback to v1|released v3/);
  const served = await rack.get('shop', '/env/MARK');
  t.is(served.status, 404);
  await shot(page, 'releases-rollback');
});

test.serial('Promote a recorded release', async (t) => {
  await ssh(['config:set', 'MARK=three', '--no-deploy', '-a', 'shop']);
  // Made over ssh: the open page hears of it on its stream.
  await page.waitForSelector('li.release[data-version="4"].status-recorded button.promote', { timeout: LONG });
  await page.click('li.release[data-version="4"] button.promote');
  t.regex(await actionOutcome(page, LONG), /^Done/);
  await page.waitForSelector('li.release[data-version="5"][aria-current="true"]', { timeout: LONG });
  t.is((await rack.get('shop', '/env/MARK')).body, 'three');
});

test.serial('Environment: three variables in one Apply Changes make exactly one release the app sees', async (t) => {
  const before = (await releases('shop')).length;
  await page.goto(`${base}/console/apps/shop/environment`);
  const keys = page.locator('input[name="new-key"]');
  const values = page.locator('input[name="new-value"]');
  const vars: [string, string][] = [['ALPHA', 'one'], ['BETA', 'two words'], ['GAMMA', XSS]];
  for (const [i, [k, v]] of vars.entries()) {
    await keys.nth(i).fill(k);
    await values.nth(i).fill(v);
  }
  await page.click('button[name="deploy"][value="yes"]');
  t.regex(await actionOutcome(page, LONG), /^Done/);
  const after = await releases('shop');
  t.is(after.length, before + 1);
  t.true(after[0]!.current);
  for (const [k, v] of vars) t.is((await rack.get('shop', `/env/${k}`)).body, v);
  // The form's list reloads with the new names.
  await page.waitForSelector('#env-panel code >> text=GAMMA', { timeout: LONG });
});

test.serial('a config value holding markup is revealed as text', async (t) => {
  await page.goto(`${base}/console/apps/shop/environment`);
  await page.click('button[aria-label="Reveal GAMMA"]');
  const revealed = page.locator('code.revealed');
  await revealed.waitFor({ timeout: LONG });
  t.is(await revealed.textContent(), XSS);
  t.is(await page.locator('main img').count(), 0);
  t.deepEqual(alerts, []);
  await shot(page, 'environment');
});

test.serial('a failed rollout says so and tells what still serves', async (t) => {
  const before = (await releases('shop')).find((r) => r.current)!.version;
  await page.goto(`${base}/console/apps/shop/environment`);
  await page.locator('input[name="new-key"]').first().fill('CRASH');
  await page.locator('input[name="new-value"]').first().fill('1');
  await page.click('button[name="deploy"][value="yes"]');
  const said = await actionOutcome(page, LONG);
  t.regex(said, /^Failed: /);
  t.true(said.includes(`v${before} `), said);
  // Two sentences, not one run into the other; the box's title says how it ended.
  t.regex(said, /[.!?)] Serving now: v\d+/);
  t.is(await page.locator('#action .action-title').textContent(), 'Changes not applied');
  t.is((await rack.get('shop', '/env/ALPHA')).body, 'one');
  const newest = (await releases('shop'))[0]!;
  t.is(newest.status, 'failed');
  await shot(page, 'environment-failed');
});

test.serial('Save without deploying records a release and leaves what serves', async (t) => {
  const before = await releases('shop');
  await page.goto(`${base}/console/apps/shop/environment`);
  await page.locator('input[name="new-key"]').first().fill('DELTA');
  await page.locator('input[name="new-value"]').first().fill('4');
  await page.click('button[name="deploy"][value="no"]');
  t.regex(await actionOutcome(page, LONG), /^Done/);
  const after = await releases('shop');
  t.is(after.length, before.length + 1);
  t.is(after[0]!.status, 'recorded');
  t.is(after.find((r) => r.current)!.version, before.find((r) => r.current)!.version);
  t.is((await rack.get('shop', '/env/DELTA')).status, 404);
});

test.serial('a deploy-only session sees config names, never values, and no buttons', async (t) => {
  const ctx = await browser.newContext();
  try {
    const p = await signIn(ctx, await token(['ci', '--app', 'shop', '--deploy-only']));
    await p.goto(`${base}/console/apps/shop/environment`);
    t.true(((await p.locator('#env-panel').textContent()) ?? '').includes('ALPHA'));
    t.is(await p.locator('button.reveal').count(), 0);
    t.is(await p.locator('button[name="deploy"]').count(), 0);
    const reveal = await p.goto(`${base}/console/apps/shop/environment/value?key=ALPHA`);
    t.is(reveal?.status(), 403);
    t.false(((await reveal?.text()) ?? '').includes('one'));
    await p.goto(`${base}/console/apps/shop/releases`);
    t.is(await p.locator('li.release button').count(), 0);
  } finally {
    await ctx.close();
  }
});

test.serial('Environment: a change and a removal in one Apply Changes are one release', async (t) => {
  const before = (await releases('shop')).length;
  await page.goto(`${base}/console/apps/shop/environment`);
  await page.fill('input[name="set:BETA"]', 'three words');
  await page.check('input[name="unset"][value="GAMMA"]');
  await page.click('button[name="deploy"][value="yes"]');
  t.regex(await actionOutcome(page, LONG), /^Done/);
  t.is((await releases('shop')).length, before + 1);
  t.is((await rack.get('shop', '/env/BETA')).body, 'three words');
  t.is((await rack.get('shop', '/env/GAMMA')).status, 404);
});

test.serial('Build again: the build lines stream live, and the list shows the new build', async (t) => {
  await page.goto(`${base}/console/apps/shop/builds`);
  t.is(await page.locator('li.build').count(), 1);
  await page.click('button[name="deploy"][value="no"]');
  t.regex(await actionOutcome(page, LONG), /^Done/);
  t.regex((await page.locator('#action pre.live').textContent()) ?? '', /Built b2/);
  await page.waitForSelector('li.build.status-succeeded >> text=b2', { timeout: LONG });
  await page.click('a.version >> text=b2');
  await page.waitForSelector('pre.log');
  t.regex((await page.locator('pre.log').textContent()) ?? '', /----->/);
  await shot(page, 'build-log');
});

test.serial('Logs: router lines arrive live, filter by type, pause and resume', async (t) => {
  await page.goto(`${base}/console/apps/shop/logs`);
  await page.waitForFunction(() => document.body.getAttribute('data-reconnecting') === null);
  const count = () => page.locator('#log-lines span').count();
  await page.selectOption('#log-type', 'router');
  await rack.get('shop', '/live-one');
  await page.waitForSelector('#log-lines span[data-type="router"] >> text=/live-one', { timeout: LONG });
  t.is(await page.locator('#log-lines span[data-type="web"]:visible').count(), 0);
  await page.click('#log-pause');
  const paused = await count();
  await rack.get('shop', '/live-two');
  await new Promise((r) => setTimeout(r, 1500));
  t.is(await count(), paused);
  await page.click('#log-pause');
  await rack.get('shop', '/live-three');
  await page.waitForSelector('#log-lines span >> text=/live-three', { timeout: LONG });
  t.pass();
});

test.serial('Logs: the search shows kept lines since a time holding a text, and only such live lines', async (t) => {
  await rack.get('shop', '/kept-needle');
  await rack.get('shop', '/kept-other');
  await page.goto(`${base}/console/apps/shop/logs?since=1h&grep=${encodeURIComponent('kept-needle')}`);
  await page.waitForFunction(() => document.body.getAttribute('data-reconnecting') === null);
  const shown = (await page.locator('#log-lines').textContent()) ?? '';
  t.regex(shown, /path="\/kept-needle"/);
  t.notRegex(shown, /kept-other/);
  t.is(await page.inputValue('input[name="since"]'), '1h');
  await rack.get('shop', '/live-other');
  await rack.get('shop', '/live-kept-needle');
  await page.waitForSelector('#log-lines span >> text=/live-kept-needle', { timeout: LONG });
  t.notRegex((await page.locator('#log-lines').textContent()) ?? '', /live-other/);
});

test.serial('Access: a token made here is shown once, and revoked here', async (t) => {
  await page.goto(`${base}/console/access`);
  await page.fill('form[hx-post="/console/access/tokens"] input[name="name"]', 'made-in-console');
  await page.fill('form[hx-post="/console/access/tokens"] input[name="apps"]', 'shop');
  await page.click('form[hx-post="/console/access/tokens"] button[type=submit]');
  const secret = (await page.locator('#access-result code.token').textContent({ timeout: LONG })) ?? '';
  t.regex(secret, /^rack_[A-Za-z0-9_-]{43}$/);
  t.true((await ssh(['tokens'])).includes('made-in-console'));
  await page.waitForSelector('#access-panel button[hx-vals*="made-in-console"]', { timeout: LONG });
  await page.click('#access-panel button[hx-vals*="made-in-console"]');
  await page.waitForFunction(() => (document.querySelector('#access-result')?.textContent ?? '').includes('made-in-console'), undefined, { timeout: 30_000 }).catch(() => undefined);
  await shot(page, 'access-revoked');
  t.regex((await page.locator('#access-result').textContent()) ?? '', /Revoked token made-in-console/);
  t.false((await ssh(['tokens'])).includes('made-in-console'));
});

test.serial('screenshots of the other tabs', async (t) => {
  await page.goto(`${base}/console/apps/shop/domains`);
  await page.fill('input[name="host"]', 'www.shop.example');
  await page.click('button >> text=Add domain');
  t.regex(await actionOutcome(page, LONG), /^Done/);
  await page.waitForSelector('#domains code >> text=www.shop.example', { timeout: LONG });
  for (const tab of ['builds', 'processes', 'logs', 'domains', 'audit']) {
    const res = await page.goto(`${base}/console/apps/shop/${tab}`);
    t.is(res?.status(), 200, tab);
    await shot(page, tab);
  }
  const res = await page.goto(`${base}/console/access`);
  t.is(res?.status(), 200);
  await shot(page, 'access');
  const narrow = await admin.newPage();
  await narrow.setViewportSize({ width: 375, height: 800 });
  await narrow.goto(`${base}/console/apps/shop/releases`);
  t.false(await narrow.evaluate(() => document.documentElement.scrollWidth > 380));
  await shot(narrow, 'releases-375px');
  await narrow.close();
});

test.serial('a session of an app token for shop cannot see or act on other, also by typing its URL', async (t) => {
  const ctx = await browser.newContext();
  try {
    const p = await signIn(ctx, shopToken);
    t.deepEqual(await p.locator('a.app-name').allTextContents(), ['shop']);
    const res = await p.goto(`${base}/console/apps/other/releases`);
    t.is(res?.status(), 403);
    const post = await p.evaluate(async () => {
      const r = await fetch('/console/apps/other/environment', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'new-key=X&new-value=1&deploy=yes',
      });
      return r.status;
    });
    t.is(post, 403);
    const stream = await p.goto(`${base}/console/apps/other/events`);
    t.is(stream?.status(), 403);
    t.is((await releases('other')).length, 0);
  } finally {
    await ctx.close();
  }
});

test.serial('a cross-origin POST is refused', async (t) => {
  const cookie = (await admin.cookies()).find((c) => c.name === SESSION)!;
  const before = (await releases('shop')).length;
  // Straight to the router's port, as another site's page (or a script) would send it.
  const agent = new Agent();
  try {
    const post = (origin: string) =>
      request(`http://127.0.0.1:${rack.httpPort}/console/apps/shop/releases/1/rollback`, {
        method: 'POST',
        dispatcher: agent,
        headers: { host: new URL(base).host, origin, cookie: `${SESSION}=${cookie.value}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: '',
      });
    const evil = await post('http://evil.example');
    t.is(evil.statusCode, 403);
    await evil.body.text();
    const none = await request(`http://127.0.0.1:${rack.httpPort}/console/apps/shop/releases/1/rollback`, {
      method: 'POST',
      dispatcher: agent,
      headers: { host: new URL(base).host, cookie: `${SESSION}=${cookie.value}` },
    });
    t.is(none.statusCode, 403);
    await none.body.text();
  } finally {
    await agent.close();
  }
  t.is((await releases('shop')).length, before);
});

test.serial('no script error and nothing refused by the Content-Security-Policy on the pages used', (t) => {
  t.deepEqual(pageErrors, []);
});

test.serial('sign-out ends the session', async (t) => {
  const ctx = await browser.newContext();
  try {
    const p = await signIn(ctx, shopToken);
    const cookie = (await ctx.cookies()).find((c) => c.name === SESSION)!;
    await Promise.all([p.waitForURL(`${base}/console/sign-in`), p.click('.sign-out button')]);
    // The old cookie is worth nothing now, even presented again.
    await ctx.addCookies([{ ...cookie }]);
    await p.goto(`${base}/console/apps/shop/releases`);
    t.is(new URL(p.url()).pathname, '/console/sign-in');
  } finally {
    await ctx.close();
  }
});

test.serial('escaping: every interpolated value is text, markup made by html() is kept', (t) => {
  const inner = html`<b>${'<i>'}</b>`;
  t.is(String(html`<p title="${'"x\' onmouseover=1'}">${inner}${['<a>', 1]}${null}${false}</p>`), '<p title="&quot;x&#39; onmouseover=1"><b>&lt;i&gt;</b>&lt;a&gt;1</p>');
});

test.serial('the page says it is reconnecting while rackd restarts, and recovers', async (t) => {
  await page.goto(`${base}/console/apps/shop/releases`);
  await page.waitForFunction(() => document.body.getAttribute('data-reconnecting') === null);
  await rack.stop();
  await page.waitForSelector('#connection:not([hidden])', { timeout: LONG });
  await rack.start();
  await page.waitForSelector('#connection[hidden]', { state: 'attached', timeout: LONG });
  // Still signed in, and live: a change over ssh shows up without a reload.
  await ssh(['config:set', 'MARK=four', '--no-deploy', '-a', 'shop']);
  const newest = (await releases('shop'))[0]!.version;
  await page.waitForSelector(`li.release[data-version="${newest}"]`, { timeout: LONG });
  t.pass();
});
