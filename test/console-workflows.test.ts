import test from 'ava';
import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { signDelivery } from '../daemon/workflows/webhook-delivery.js';
import { api } from './support/api-client.js';
import { GitHost } from './support/git-host.js';
import { commitFile, exec, RackDaemon, ROOT } from './support/rack-daemon.js';
import { actionOutcome, CHROMIUM, launchChromium } from './support/console-browser.js';

// The Console's Deploys tab and Pipelines page in a real Chromium, against a real rackd and Docker:
// `stage` is connected to a repository on a local git host and built by a push; `prod` by its own
// push of an older commit, until the page promotes stage's image to it.
const SHOTS = join(ROOT, 'test', 'screenshots');
const LONG = 240_000;
const HOST_TOKEN = 'glpat-NeverOnThePage';

let rack: RackDaemon;
let host: GitHost;
let browser: Browser;
let page: Page;
let base: string;
let secret: string;
const pageErrors: string[] = [];

async function ssh(args: string[], input?: string): Promise<string> {
  const r = await rack.ssh(args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`ssh ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function signIn(ctx: BrowserContext, token: string): Promise<Page> {
  const p = await ctx.newPage();
  p.on('dialog', (d) => void d.accept());
  p.on('pageerror', (e) => pageErrors.push(e.message));
  p.on('console', (m) => {
    if (m.type() === 'error' && /Content.Security.Policy|Refused/i.test(m.text())) pageErrors.push(m.text());
  });
  await p.goto(`${base}/console/`);
  await p.fill('#token', token);
  await Promise.all([p.waitForURL(`${base}/console/`), p.click('button[type=submit]')]);
  return p;
}

const current = async (app: string) =>
  (JSON.parse(await ssh(['releases', '-a', app, '--json'])) as { version: number; current: boolean; description: string }[]).find((r) => r.current)!;

/** Whether the page is no wider than its viewport (tables scroll inside their own box). */
const fitsWidth = (p: Page) => p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);

test.before(async () => {
  // No skipping: without the browser the pages are unproven, so the file fails.
  await access(CHROMIUM);
  await mkdir(SHOTS, { recursive: true });
  rack = await RackDaemon.create({ RACK_FETCH_ALLOW: '127.0.0.1' });
  host = await GitHost.start();
  await host.createRepo('stage', join(ROOT, 'test', 'fixtures', 'node-env'));
  const dir = await rack.appRepo('node-env', 'stage');
  await ssh(['apps:create', 'prod']);
  // Two pushes of the fixture: prod gets the first commit, stage one more.
  await exec('git', ['remote', 'add', 'prod', rack.remote('prod')], { cwd: dir });
  const toProd = await exec('git', ['push', 'prod', 'main'], { cwd: dir, env: rack.gitEnv() });
  if (toProd.code !== 0) throw new Error(toProd.stderr);
  await commitFile(dir, 'NOTES', 'staging only', 'the staging change');
  const toStage = await rack.push(dir);
  if (toStage.code !== 0) throw new Error(toStage.stderr);
  await ssh(['pipelines:create', 'shop']);
  await ssh(['pipelines:add', 'stage', '--pipeline', 'shop', '--stage', 'staging']);
  await ssh(['pipelines:add', 'prod', '--pipeline', 'shop', '--stage', 'production']);
  const connected = await ssh(['repo:connect', host.url('stage'), '--token-stdin', '-a', 'stage'], `${HOST_TOKEN}\n`);
  secret = /Secret:\s+([0-9a-f]{64})/.exec(connected)?.[1] ?? '';
  if (secret === '') throw new Error(`no secret printed: ${connected}`);
  // A review app, as a pull request would have made it (its name is what makes it one).
  await ssh(['apps:create', 'stage-pr-7']);
  base = `http://rack.localhost:${rack.httpPort}`;
  browser = await launchChromium();
  page = await signIn(await browser.newContext({ viewport: { width: 1100, height: 900 } }), await rack.createToken('console-admin'));
});

test.after.always(async () => {
  await browser?.close();
  await rack?.destroy();
  await host?.stop();
});

test.serial('the Deploys tab shows the connected repository, its webhook and last delivery, and never its secret or token', async (t) => {
  // A signed push to another branch: answered, ignored, and recorded as the last delivery.
  const body = JSON.stringify({ ref: 'refs/heads/feature', before: '0'.repeat(40), after: 'a'.repeat(40), commits: [], repository: { full_name: 'dev/stage' } });
  const delivered = await api(rack, 'POST', '/hooks/stage', {
    rawBody: body,
    headers: { 'content-type': 'application/json', 'X-GitHub-Event': 'push', 'X-GitHub-Delivery': 'd-1', ...signDelivery('github', secret, body) },
  });
  t.is(delivered.status, 200, delivered.text);
  await page.goto(`${base}/console/apps/stage/releases`);
  await page.click('nav.tabs a[href="/console/apps/stage/deploys"]');
  await page.waitForSelector('#deploys .repo-url');
  t.is(await page.locator('.repo-url').textContent(), host.url('stage'));
  t.is(await page.locator('.repo-branch').textContent(), 'main');
  t.is(await page.locator('.webhook-url').textContent(), `http://rack.localhost:${rack.httpPort}/hooks/stage`);
  t.regex((await page.locator('.last-delivery').textContent()) ?? '', /github push: ignored: a push to feature, not main/);
  const text = await page.content();
  t.false(text.includes(secret), 'the secret is never on the page');
  t.false(text.includes(HOST_TOKEN), 'nor the token');
  t.regex((await page.locator('#deploys').textContent()) ?? '', /Token\s*set/);
  // The review app that exists, with its pull request, state and its own Console page.
  const row = page.locator('table.review-apps tr[data-app="stage-pr-7"]');
  t.regex((await row.textContent()) ?? '', /#7[\s\S]*not deployed yet/);
  t.is(await row.locator('a').first().getAttribute('href'), '/console/apps/stage-pr-7/releases');
  // Enable through the page: the command runs, the panel fetches itself again.
  t.regex((await page.locator('.review-state').textContent()) ?? '', /off/);
  await page.click('button.review-toggle');
  await page.waitForFunction(() => /Review apps are on/.test(document.querySelector('.review-state')?.textContent ?? ''), undefined, { timeout: LONG });
  t.true((JSON.parse(await ssh(['repo:info', '--json', '-a', 'stage'])) as { reviewApps: boolean }).reviewApps);
  t.is(await page.locator('button.review-toggle').textContent(), 'Disable');
  // A delivery while the tab is open: the panel fetches itself again, no reload.
  const other = JSON.stringify({ ref: 'refs/heads/other', before: '0'.repeat(40), after: 'b'.repeat(40), commits: [], repository: { full_name: 'dev/stage' } });
  const again = await api(rack, 'POST', '/hooks/stage', {
    rawBody: other,
    headers: { 'content-type': 'application/json', 'X-GitHub-Event': 'push', 'X-GitHub-Delivery': 'd-2', ...signDelivery('github', secret, other) },
  });
  t.is(again.status, 200, again.text);
  await page.waitForFunction(() => /a push to other, not main/.test(document.querySelector('.last-delivery')?.textContent ?? ''), undefined, { timeout: LONG });
  await page.screenshot({ path: join(SHOTS, 'deploys.png'), fullPage: true });
  // An app without a repository: how to connect one, and no form for secrets.
  await page.goto(`${base}/console/apps/prod/deploys`);
  t.regex((await page.locator('#deploys').textContent()) ?? '', /No repository is connected\. Connect one with ssh rack repo:connect URL -a prod\./);
  t.is(await page.locator('#deploys form, #deploys input').count(), 0);
  t.deepEqual(pageErrors, []);
});

test.serial('the Pipelines page shows both stages with their releases; Promote moves production to the staging image', async (t) => {
  await page.goto(`${base}/console/`);
  await page.click('nav a[href="/console/pipelines"]');
  await page.waitForURL(`${base}/console/pipelines`);
  const stageRow = page.locator('tr.pipeline-app[data-app="stage"]');
  const prodRow = page.locator('tr.pipeline-app[data-app="prod"]');
  const stage = await current('stage');
  t.regex((await stageRow.textContent()) ?? '', new RegExp(`staging[\\s\\S]*v${stage.version}`));
  t.regex((await prodRow.textContent()) ?? '', /production[\s\S]*v1 /);
  t.regex((await stageRow.locator('code').first().textContent()) ?? '', /^[0-9a-f]{7}$/);
  t.is(await prodRow.locator('button.promote').count(), 0, 'production is the last stage');
  // What a promotion would bring, on demand.
  await stageRow.locator('details.pipeline-diff summary').click();
  await page.waitForFunction(() => /the staging change/.test(document.querySelector('details.pipeline-diff .diff-body')?.textContent ?? ''), undefined, { timeout: LONG });
  await page.screenshot({ path: join(SHOTS, 'pipelines.png'), fullPage: true });

  await stageRow.locator('button.promote').click();
  t.regex(await actionOutcome(page, LONG), /^Done\./);
  t.regex((await page.locator('#action pre.live').textContent()) ?? '', /Promoting stage v\d+ to prod/);
  const prod = await current('prod');
  t.is(prod.description, `Promote from stage v${stage.version}`);
  // The table fetched itself again: the production row shows the new release.
  await page.waitForFunction((v) => (document.querySelector('tr.pipeline-app[data-app="prod"] td.release')?.textContent ?? '').includes(`v${v}`), prod.version, { timeout: LONG });
  t.regex((await prodRow.locator('td.release').textContent()) ?? '', new RegExp(`v${prod.version} Promote from stage v${stage.version}`));
  t.deepEqual(pageErrors, []);
});

test.serial('a token without rights on production sees only staging, and its Promote is refused in one line', async (t) => {
  const p = await signIn(await browser.newContext(), await rack.createToken('stage-dev', ['--app', 'stage']));
  await p.click('nav a[href="/console/pipelines"]');
  await p.waitForSelector('tr.pipeline-app[data-app="stage"]');
  t.is(await p.locator('tr.pipeline-app[data-app="prod"]').count(), 0, "production's app is not this token's to see");
  const before = await current('prod');
  await p.locator('tr.pipeline-app[data-app="stage"] button.promote').click();
  await p.waitForSelector('#action .error');
  const refusal = (await p.locator('#action .error').textContent()) ?? '';
  t.regex(refusal, /may not run pipelines:promote on prod/);
  t.false(refusal.includes('\n'), 'one line');
  t.is((await current('prod')).version, before.version, 'nothing released');
  await p.close();
});

test.serial('at 390 px the Pipelines page and the Deploys tab keep to the screen: tables scroll inside their box', async (t) => {
  const p = await signIn(await browser.newContext({ viewport: { width: 390, height: 844 } }), await rack.createToken('phone'));
  for (const path of ['/console/pipelines', '/console/apps/stage/deploys']) {
    await p.goto(`${base}${path}`);
    await p.waitForSelector('main section');
    t.true(await fitsWidth(p), path);
  }
  await p.close();
});
