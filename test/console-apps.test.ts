import test from 'ava';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { actionOutcome, consoleBase, launchChromium, signIn } from './support/console-browser.js';
import { commitFile, RackDaemon } from './support/rack-daemon.js';

// The Console's app flows in a real Chromium against a real rackd, Docker and ssh: scaling beside
// ssh, failed deploys, creating and destroying apps, what each role is shown, and live streams
// ending with their token.
const LONG = 180_000;

let rack: RackDaemon;
let browser: Browser;
let admin: BrowserContext;
let page: Page;
let base: string;
/** The working copy of `jobs` (web and worker). */
let jobsDir: string;
/** A session whose token expires a minute after it was made: its stream must end by itself. */
let expiring: { ctx: BrowserContext; page: Page } | undefined;

async function ssh(args: string[]): Promise<string> {
  const r = await rack.ssh(args);
  if (r.code !== 0) throw new Error(`ssh ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function counts(app: string): Promise<Record<string, number>> {
  await rack.drained(app, LONG);
  const rows = JSON.parse(await ssh(['ps', '--json', '-a', app])) as { type: string }[];
  const out: Record<string, number> = {};
  for (const r of rows) out[r.type] = (out[r.type] ?? 0) + 1;
  return out;
}

async function audit(app: string): Promise<{ action: string; outcome: string; actor: { name: string } }[]> {
  return JSON.parse(await ssh(['audit', '-a', app, '--json'])) as { action: string; outcome: string; actor: { name: string } }[];
}

test.before(async () => {
  browser = await launchChromium();
  rack = await RackDaemon.create();
  jobsDir = await rack.appRepo('node-procs', 'jobs');
  // rack's default health check: the fixture's 5 quick attempts fail on a busy machine.
  await commitFile(jobsDir, 'app.json', '{}\n', 'default health check');
  const push = await rack.push(jobsDir);
  if (push.code !== 0) throw new Error(push.stderr);
  base = await consoleBase(rack);
  admin = await browser.newContext({ viewport: { width: 1280, height: 900 }, permissions: ['clipboard-read', 'clipboard-write'] });
  page = await signIn(admin, base, await rack.createToken('console-admin'));
  const ctx = await browser.newContext();
  const p = await signIn(ctx, base, await rack.createToken('short-lived', ['--app', 'jobs', '--expires', '1m']));
  await p.goto(`${base}/console/apps/jobs/releases`);
  expiring = { ctx, page: p };
});

test.after.always(async () => {
  await browser?.close();
  await rack?.destroy();
});

test.serial('Processes shows the formation as ps:scale left it, and the form scales only the type changed', async (t) => {
  await ssh(['ps:scale', 'worker=2', '-a', 'jobs']);
  await page.goto(`${base}/console/apps/jobs/processes`);
  t.is(await page.inputValue('input[name="count:worker"]'), '2');
  await page.fill('input[name="count:web"]', '2');
  await page.click('form.scale button[type=submit]');
  t.regex(await actionOutcome(page), /^Done/);
  t.notRegex((await page.locator('#action pre.live').textContent()) ?? '', /worker=0/);
  t.deepEqual(await counts('jobs'), { web: 2, worker: 2 });
});

test.serial("an action that ends before the page's stream opens still shows its lines and outcome", async (t) => {
  const scales = async () => (await audit('jobs')).filter((e) => e.action === 'ps:scale').length;
  const before = await scales();
  let web = 0;
  // The page's stream is held back until the scale has ended (a busy machine can open it that late).
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  await page.route('**/events*', async (route) => {
    await held;
    await route.continue();
  });
  try {
    await page.goto(`${base}/console/apps/jobs/processes`);
    web = (await page.inputValue('input[name="count:web"]')) === '1' ? 2 : 1;
    await page.fill('input[name="count:web"]', String(web));
    await page.click('form.scale button[type=submit]');
    await page.waitForSelector('#action .action');
    while ((await scales()) === before) await page.waitForTimeout(200);
    release();
    t.regex(await actionOutcome(page), /^Done/);
    t.regex((await page.locator('#action pre.live').textContent()) ?? '', new RegExp(`web=${web}`));
  } finally {
    release();
    await page.unroute('**/events*');
  }
  t.is((await counts('jobs')).web, web);
});

test.serial('a count typed and not yet sent stays (with its focus and caret) when a scale made over ssh refreshes Processes', async (t) => {
  await page.goto(`${base}/console/apps/jobs/processes`);
  await page.waitForSelector('body[data-live="true"]', { timeout: LONG });
  const worker = (await page.inputValue('input[name="count:worker"]')) === '1' ? 2 : 1;
  // A refresh that comes between selecting the field's text and typing over it (as page.fill does)
  // keeps the selection, so the typing replaces it.
  await page.focus('input[name="count:web"]');
  await page.evaluate(() => {
    (document.querySelector('input[name="count:web"]') as HTMLInputElement).select();
    document.getElementById('processes')!.setAttribute('data-old', '');
    (window as unknown as { htmx: { trigger(el: Element, name: string): void } }).htmx.trigger(document.body, 'rack-processes');
  });
  await page.waitForFunction(() => document.querySelector('#processes[data-old]') === null, undefined, { timeout: LONG });
  await page.keyboard.insertText('3');
  t.is(await page.inputValue('input[name="count:web"]'), '3');
  await ssh(['ps:scale', `worker=${worker}`, '-a', 'jobs']);
  // The panel is fetched again: the count scaled elsewhere shows, the one being typed is kept.
  await page.waitForFunction((w) => (document.querySelector('input[name="count:worker"]') as HTMLInputElement | null)?.value === w, String(worker), { timeout: LONG });
  t.is(await page.inputValue('input[name="count:web"]'), '3');
  // Still focused, the caret where it was: what is typed next goes on from there.
  await page.keyboard.type('1');
  t.is(await page.inputValue('input[name="count:web"]'), '31');
});

test.serial('a change whose request never reaches rack says so where its answer would be', async (t) => {
  await page.goto(`${base}/console/apps/jobs/domains`);
  await page.route('**/domains/add', (route) => route.abort('internetdisconnected'));
  try {
    await page.fill('input[name="host"]', 'lost.jobs.example');
    await page.click('button >> text=Add domain');
    await page.waitForSelector('#action .error >> text=/could not be reached/', { timeout: LONG });
  } finally {
    await page.unroute('**/domains/add');
  }
  t.notRegex(await ssh(['domains', '-a', 'jobs']), /lost\.jobs\.example/);
});

test.serial('Releases: a push made over ssh appears at once with its live lines, then its release', async (t) => {
  await page.goto(`${base}/console/apps/jobs/releases`);
  await page.waitForSelector('body[data-live="true"]', { timeout: LONG });
  const before = Number(await page.locator('li.release').first().getAttribute('data-version'));
  await commitFile(jobsDir, 'NOTES', 'watched', 'A push watched from the Console');
  const pushing = rack.push(jobsDir);
  try {
    // While git still runs: the build's first line is on the page.
    await page.waitForSelector('#live-deploys .live-deploy pre >> text=/Building jobs b\\d+/', { timeout: LONG });
  } finally {
    t.is((await pushing).code, 0);
  }
  await page.waitForSelector('#live-deploys .live-deploy[data-state="ok"]', { timeout: LONG });
  t.is(await page.locator('#live-deploys .action-title').first().textContent(), 'Push deployed');
  await page.waitForSelector(`li.release[data-version="${before + 1}"][aria-current="true"]`, { timeout: LONG });
  t.pass();
});

test.serial('Builds: Build again, then Deploy this build releases that build without building', async (t) => {
  await page.goto(`${base}/console/apps/jobs/builds`);
  const builds = await page.locator('li.build').count();
  await page.click('button[name="deploy"][value="no"]');
  t.regex(await actionOutcome(page), /^Done/);
  const id = builds + 1;
  const deploy = page.locator(`li.build:has(a.version:text-is("b${id}")) button.deploy-build`);
  await deploy.waitFor({ timeout: LONG });
  await deploy.click();
  await page.waitForSelector(`#action .action-title >> text=Deploying b${id}`, { timeout: LONG });
  t.regex(await actionOutcome(page), /^Done/);
  t.is(await page.locator('#action .action-title').textContent(), `Deployed b${id}`);
  t.notRegex((await page.locator('#action pre.live').textContent()) ?? '', /Building/);
  const [newest] = JSON.parse(await ssh(['releases', '-a', 'jobs', '--json'])) as { build: number; current: boolean }[];
  t.is(newest?.build, id);
  t.true(newest?.current);
  t.is(JSON.parse(await ssh(['builds', '-a', 'jobs', '--json'])).length, id);
});

test.serial('a push refused by its health check is a failure in the audit log, and the apps list shows the failed deploy', async (t) => {
  await ssh(['apps:create', 'broken']);
  // Set before the first release: the first push starts from it, and the web process exits at once.
  await ssh(['config:set', 'CRASH=1', '-a', 'broken']);
  const dir = await rack.appRepo('node-env', 'broken');
  const push = await rack.push(dir);
  t.not(push.code, 0);
  const entry = (await audit('broken')).find((e) => e.action === 'git push');
  t.truthy(entry);
  t.not(entry!.outcome, 'ok');
  await page.goto(`${base}/console/`);
  const card = page.locator('li.card.app', { has: page.locator('a.app-name', { hasText: /^broken$/ }) });
  t.is(await card.locator('.last-failed').count(), 1);
  t.regex((await card.locator('.reason').textContent()) ?? '', /health check/);
  t.notRegex((await card.textContent()) ?? '', /not deployed/);
});

test.serial('Domains: errors replace each other instead of piling up', async (t) => {
  await page.goto(`${base}/console/apps/jobs/domains`);
  await page.fill('input[name="host"]', 'www.jobs.example');
  await page.click('button >> text=Add domain');
  t.regex(await actionOutcome(page), /^Done/);
  await page.waitForSelector('#domains code >> text=www.jobs.example', { timeout: LONG });
  for (const bad of ['not a host', 'still not a host']) {
    await page.fill('input[name="host"]', bad);
    await page.click('button >> text=Add domain');
    await page.waitForFunction((b) => (document.querySelector('#action')?.textContent ?? '').includes(b), bad, { timeout: LONG });
  }
  t.is(await page.locator('#action').count(), 1);
  t.is(await page.locator('main .error').count(), 1);
});

test.serial("Environment: an add-on's variables are shown as set by it, with nothing to change", async (t) => {
  await ssh(['config:set', 'GREETING=hi', '-a', 'jobs']);
  await ssh(['addons:create', 'redis', '-a', 'jobs']);
  await page.goto(`${base}/console/apps/jobs/environment`);
  const rows = page.locator('#env-panel tr[data-addon]');
  t.true(await rows.count() >= 1);
  t.regex((await page.locator('#env-panel tr', { has: page.locator('code', { hasText: /^REDIS_URL$/ }) }).textContent()) ?? '', /set by add-on/);
  t.is(await rows.locator('input').count(), 0);
  // The user's own variables are still editable.
  t.true(await page.locator('#env-panel tr:not([data-addon]) input[name^="set:"]').count() >= 1);
});

test.serial('Environment: a name the pattern refuses says what is allowed, and so does the server', async (t) => {
  await page.goto(`${base}/console/apps/jobs/environment`);
  const name = page.locator('input[name="new-key"]').first();
  await name.fill('1BAD');
  await page.locator('input[name="new-value"]').first().fill('x');
  await page.click('button[name="deploy"][value="yes"]');
  t.regex(await name.evaluate((el: HTMLInputElement) => el.validationMessage), /^Use letters, digits and _/);
  const answer = await page.evaluate(async () => {
    const r = await fetch('/console/apps/jobs/environment', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'hx-request': 'true' },
      body: 'new-key=1BAD&new-value=x&deploy=yes',
    });
    return { status: r.status, text: await r.text() };
  });
  t.is(answer.status, 400);
  t.regex(answer.text, /invalid config name &quot;1BAD&quot;: use letters, digits and _/);
});

test.serial('a deploy-only session is not shown the tabs it may not open', async (t) => {
  const ctx = await browser.newContext();
  try {
    const p = await signIn(ctx, base, await rack.createToken('ci', ['--app', 'jobs', '--deploy-only']));
    await p.goto(`${base}/console/apps/jobs/releases`);
    const tabs = await p.locator('nav.tabs a').allTextContents();
    t.false(tabs.includes('Processes'));
    t.false(tabs.includes('Domains'));
    t.true(tabs.includes('Releases'));
    // Every tab it is shown opens.
    const links = await p.locator('nav.tabs a').evaluateAll((as) => as.map((a) => (a as HTMLAnchorElement).getAttribute('href') ?? ''));
    for (const href of links) {
      const res = await p.goto(`${base}${href}`);
      t.is(res?.status(), 200, href);
    }
    await page.goto(`${base}/console/apps/jobs/releases`);
    t.true((await page.locator('nav.tabs a').allTextContents()).includes('Processes'));
  } finally {
    await ctx.close();
  }
});

test.serial("a page's live stream ends the moment its token is revoked, and sign-in says why", async (t) => {
  const ctx = await browser.newContext();
  try {
    const p = await signIn(ctx, base, await rack.createToken('watcher', ['--app', 'jobs']));
    await p.goto(`${base}/console/apps/jobs/logs`);
    await p.waitForSelector('body[data-live="true"]', { timeout: LONG });
    await ssh(['tokens:revoke', 'watcher']);
    // `revoked` comes from the revocation itself; the stream's periodic check would say `signed-out`.
    await p.waitForURL(`${base}/console/sign-in?ended=revoked`, { timeout: LONG });
    t.regex((await p.locator('main .error').textContent()) ?? '', /Your session ended: its token was revoked/);
  } finally {
    await ctx.close();
  }
});

test.serial('Apps: create one (told its git remote and first push), then destroy it by typing its name', async (t) => {
  await page.goto(`${base}/console/`);
  await page.fill('form.create-app input[name="name"]', 'fresh');
  await page.click('form.create-app button[type=submit]');
  await page.waitForSelector('#create-result .created-app', { timeout: LONG });
  const told = (await page.locator('#create-result').textContent()) ?? '';
  t.regex(told, /git remote add rack ssh:\/\/git@[^\s]+:\d+\/fresh\n/);
  t.true(told.includes('git push rack main'));
  await page.waitForSelector('#apps a.app-name >> text=fresh', { timeout: LONG });
  t.true((await ssh(['apps'])).includes('fresh'));

  await page.goto(`${base}/console/apps/fresh/destroy`);
  await page.fill('#confirm', 'fres');
  const wrong = await Promise.all([page.waitForNavigation(), page.click('form.destroy-app button[type=submit]')]);
  t.is(wrong[0]?.status(), 400);
  t.true((await ssh(['apps'])).includes('fresh'));
  await page.goto(`${base}/console/apps/fresh/destroy`);
  await page.fill('#confirm', 'fresh');
  await Promise.all([page.waitForURL(`${base}/console/?destroyed=fresh`, { timeout: LONG }), page.click('form.destroy-app button[type=submit]')]);
  t.false((await ssh(['apps'])).includes('fresh'));
  const log = JSON.parse(await ssh(['audit', '--json'])) as { action: string; app: string; outcome: string; actor: { name: string } }[];
  const mine = log.filter((e) => e.app === 'fresh' && e.actor.name === 'console-admin').map((e) => `${e.action} ${e.outcome}`);
  t.deepEqual(mine.sort(), ['apps:create ok', 'apps:destroy bad_argument', 'apps:destroy ok']);
});

test.serial('Access: a new token has a copy button, and every table column is named', async (t) => {
  await page.goto(`${base}/console/access`);
  await page.fill('form[hx-post="/console/access/tokens"] input[name="name"]', 'copied');
  await page.click('form[hx-post="/console/access/tokens"] button[type=submit]');
  const secret = (await page.locator('#access-result code.token').textContent({ timeout: LONG })) ?? '';
  await page.click('#access-result button.copy');
  await page.waitForSelector('#access-result button.copy >> text=Copied', { timeout: LONG });
  t.is(await page.evaluate(() => navigator.clipboard.readText()), secret);
  const headers = await page.locator('#access-panel th').allTextContents();
  t.true(headers.length > 0);
  t.false(headers.some((h) => h.trim() === ''));
});

test.serial('times read "ago" with the exact time on hover; /favicon.ico is an icon', async (t) => {
  await page.goto(`${base}/console/apps/jobs/releases`);
  const time = page.locator('li.release time').first();
  t.regex((await time.textContent()) ?? '', /just now|min ago|hours? ago/);
  t.regex((await time.getAttribute('title')) ?? '', /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
  const icon = await page.goto(`${base}/favicon.ico`);
  t.is(icon?.status(), 200);
  t.is(icon?.headers()['content-type'], 'image/svg+xml');
});

test.serial('the dark scheme follows the system', async (t) => {
  const dark = await browser.newContext({ colorScheme: 'dark' });
  try {
    const p = await dark.newPage();
    await p.goto(`${base}/console/sign-in`);
    const bg = await p.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
    const [r, g, b] = (bg.match(/\d+/g) ?? []).map(Number);
    t.true((r ?? 255) + (g ?? 255) + (b ?? 255) < 150, bg);
  } finally {
    await dark.close();
  }
});

test.serial("a page's live stream ends when its token expires, and sign-in says why", async (t) => {
  // Made in `before` with a minute to live: the stream ends on its expiry, told as such.
  await expiring!.page.waitForURL(`${base}/console/sign-in?ended=expired`, { timeout: LONG });
  t.regex((await expiring!.page.locator('main .error').textContent()) ?? '', /token expired/);
  await expiring!.ctx.close();
});
