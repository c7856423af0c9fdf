import test from 'ava';
import { access, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { Browser, BrowserContext } from 'playwright-core';
import { request } from 'undici';
import { clearedCookies, cookieValues, sessionCookieFor } from '../daemon/console/console-sessions.js';
import { api } from './support/api-client.js';
import { keypair, RackDaemon } from './support/rack-daemon.js';
import { CHROMIUM, launchChromium } from './support/console-browser.js';

// Issue 27, items 4 and 5, with an app-scoped key and token for `evil` against app `victim`:
// the domains evil could claim, and the console session evil could plant through one of them.
// Real rackd, real Docker (victim is deployed and must keep serving), real ssh, real Chromium.

let rack: RackDaemon;
let evilKey: string;
let evilToken: string;
let adminToken: string;
let browser: Browser;
let neighbour: Server;
let neighbourPort = 0;
/** What the neighbour site answers with, as its Set-Cookie lines. */
let plant: string[] = [];

async function ssh(args: string[]): Promise<string> {
  const r = await rack.ssh(args);
  if (r.code !== 0) throw new Error(`ssh ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** The victim answers on its default host and on its custom domain. */
async function victimServes(t: { is: (a: unknown, b: unknown, m?: string) => void }): Promise<void> {
  t.is((await rack.get('victim')).body, 'hello from rack v1\n', 'victim.localhost still serves');
  t.is((await rack.getHost('www.victim.test', '/')).body, 'hello from rack v1\n', 'www.victim.test still serves');
}

/** A session cookie of the console, got by signing in with `token` as a browser would (name and value). */
async function consoleSession(daemon: RackDaemon, host: string, token: string): Promise<{ name: string; value: string }> {
  const res = await request(`http://127.0.0.1:${daemon.httpPort}/console/sign-in`, {
    method: 'POST',
    headers: { host: `${host}:${daemon.httpPort}`, origin: `http://${host}:${daemon.httpPort}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }).toString(),
  });
  await res.body.text();
  const line = [res.headers['set-cookie'] ?? []].flat()[0] ?? '';
  const m = /^([^=;]+)=([^;]+)/.exec(line);
  if (res.statusCode !== 303 || !m) throw new Error(`sign-in answered ${res.statusCode} ${line}`);
  return { name: m[1]!, value: m[2]! };
}

async function signIn(ctx: BrowserContext, base: string, secret: string): Promise<void> {
  const p = await ctx.newPage();
  await p.goto(`${base}/console/sign-in`);
  await p.fill('#token', secret);
  await Promise.all([p.waitForURL(`${base}/console/`), p.click('button[type=submit]')]);
  await p.close();
}

/** Visits the neighbour site at `host` (any port: cookies ignore ports), which sets `plant`. */
async function visitNeighbour(ctx: BrowserContext, host: string): Promise<void> {
  const p = await ctx.newPage();
  await p.goto(`http://${host}:${neighbourPort}/`);
  await p.close();
}

test.before(async () => {
  // No skipping: without the browser the console's cookie is unproven, so the file fails.
  await access(CHROMIUM);
  rack = await RackDaemon.create();
  const push = await rack.push(await rack.appRepo('node-hello', 'victim'));
  if (push.code !== 0) throw new Error(push.stderr);
  await ssh(['domains:add', 'www.victim.test', '-a', 'victim']);
  await ssh(['apps:create', 'evil']);
  const key = await keypair(rack.work, 'evil');
  evilKey = key.priv;
  const added = await rack.ssh(['keys:add', 'evil', '--app', 'evil'], { input: await readFile(key.pub, 'utf8') });
  if (added.code !== 0) throw new Error(added.stderr);
  evilToken = await rack.createToken('evil', ['--app', 'evil']);
  adminToken = await rack.createToken('admin-console');
  neighbour = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html', 'set-cookie': plant });
    res.end('<p>a neighbour</p>');
  });
  await new Promise<void>((resolve) => neighbour.listen(0, '127.0.0.1', resolve));
  neighbourPort = (neighbour.address() as { port: number }).port;
  browser = await launchChromium('MAP *.localhost 127.0.0.1, MAP *.example.test 127.0.0.1');
});

test.after.always(async () => {
  await browser?.close();
  await new Promise((resolve) => (neighbour ? neighbour.close(resolve) : resolve(undefined)));
  await rack?.destroy();
});

// Each host evil tried, and the one line it now gets instead.
const ATTACKS: [host: string, expected: RegExp][] = [
  ['x.rack.localhost', /^ ! +x\.rack\.localhost is under rack's own host name rack\.localhost \(RACK_CONSOLE_HOST\)/],
  ['rack.localhost', /^ ! +rack\.localhost is rack's own host name/],
  ['x.victim.localhost', /^ ! +x\.victim\.localhost is under the default host of app victim/],
  ['victim.localhost', /^ ! +victim\.localhost is the default host of app victim/],
  ['admin.www.victim.test', /^ ! +admin\.www\.victim\.test is under www\.victim\.test, a domain of another app \(victim\)/],
  ['www.victim.test', /^ ! +www\.victim\.test already belongs to another app \(victim\)/],
  ['victim.test', /^ ! +victim\.test is above www\.victim\.test, a domain of another app \(victim\)/],
  ['x.later.localhost', /^ ! +x\.later\.localhost is under RACK_DOMAIN \(localhost\)/],
  ['127.0.0.1', /^ ! +"127\.0\.0\.1" is an IP address/],
  ['127.1', /^ ! +"127\.1" is an IP address/],
  ['0x7f.0.0.1', /^ ! +"0x7f\.0\.0\.1" is an IP address/],
  ['[::1]', /^ ! +"\[::1\]" is an IP address/],
];

test.serial("an app key for evil cannot claim the console's host, victim's hosts, names above them, RACK_DOMAIN's names or an IP; victim keeps serving", async (t) => {
  for (const [host, expected] of ATTACKS) {
    const r = await rack.ssh(['domains:add', host, '-a', 'evil'], { key: evilKey });
    t.is(r.code, 1, `${host}: ${r.stdout}`);
    t.regex(r.stderr, expected, host);
    t.is(r.stderr.trim().split('\n').length, 1, `${host}: one line`);
  }
  t.deepEqual(JSON.parse((await rack.ssh(['domains', '--json', '-a', 'evil'], { key: evilKey })).stdout).domains, []);
  t.deepEqual(JSON.parse(await ssh(['domains', '--json', '-a', 'victim'])).domains, ['www.victim.test']);
  await victimServes(t);
  // Nothing of the console moved to evil either.
  t.is((await rack.getHost('x.rack.localhost', '/')).status, 404);
  t.is((await rack.getHost('rack.localhost', '/console/sign-in')).status, 200);
});

test.serial('the same refusals over the API with an app token for evil, with their codes', async (t) => {
  for (const [host, code, status] of [
    ['x.rack.localhost', 'domain_reserved', 403],
    ['x.victim.localhost', 'domain_taken', 409],
    ['admin.www.victim.test', 'domain_taken', 409],
    ['127.0.0.1', 'domain_reserved', 403],
  ] as const) {
    const r = await api(rack, 'POST', '/api/v1/apps/evil/domains', { token: evilToken, body: { host } });
    t.is(r.status, status, `${host}: ${r.text}`);
    t.is((r.json as { error: { code: string } }).error.code, code, host);
  }
  await victimServes(t);
});

test.serial('an app may add names under its own hosts', async (t) => {
  const own = await rack.ssh(['domains:add', 'api.evil.localhost', '-a', 'evil'], { key: evilKey });
  t.is(own.code, 0, own.stderr);
  const sub = await rack.ssh(['domains:add', 'admin.www.victim.test', '-a', 'victim']);
  t.is(sub.code, 0, sub.stderr);
  t.is((await rack.getHost('admin.www.victim.test', '/')).body, 'hello from rack v1\n');
});

test.serial("a session cookie a neighbour plants for the console's domain is not the console's", async (t) => {
  const base = `http://rack.localhost:${rack.httpPort}`;
  const evil = await consoleSession(rack, 'rack.localhost', evilToken);
  // What an app at x.rack.localhost (or any host under a name the console shares) could answer.
  plant = [`rack_session=${evil.value}; Domain=rack.localhost; Path=/`, `__Host-rack_session=${evil.value}; Domain=rack.localhost; Path=/; Secure`];
  const ctx = await browser.newContext();
  try {
    await visitNeighbour(ctx, 'x.rack.localhost');
    t.true((await ctx.cookies()).some((c) => c.value === evil.value), 'the browser kept the planted cookie');
    const p = await ctx.newPage();
    await p.goto(`${base}/console/`);
    t.is(new URL(p.url()).pathname, '/console/sign-in', "the console did not take evil's session");
    // Signed in as the admin, the console is the admin's, planted cookie or not.
    await signIn(ctx, base, adminToken);
    await p.goto(`${base}/console/`);
    t.deepEqual((await p.locator('a.app-name').allTextContents()).sort(), ['evil', 'victim']);
    const own = (await ctx.cookies()).find((c) => c.name === '__Host-rack_session');
    t.like(own, { domain: 'rack.localhost', path: '/', secure: true, httpOnly: true, sameSite: 'Strict' });
  } finally {
    await ctx.close();
  }
  await victimServes(t);
});

test.serial('a request with two session cookies is refused and neither session is used', async (t) => {
  const admin = await consoleSession(rack, 'rack.localhost', adminToken);
  const evil = await consoleSession(rack, 'rack.localhost', evilToken);
  t.is(admin.name, '__Host-rack_session');
  const get = async (cookie: string) => {
    const res = await request(`http://127.0.0.1:${rack.httpPort}/console/`, { headers: { host: `rack.localhost:${rack.httpPort}`, cookie } });
    return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
  };
  for (const [first, second] of [[evil, admin], [admin, evil]]) {
    const both = await get(`${first!.name}=${first!.value}; ${second!.name}=${second!.value}`);
    t.is(both.status, 400);
    t.regex(both.body, /two rack session cookies/);
    t.regex([both.headers['set-cookie']].flat().join('\n'), /__Host-rack_session=; Path=\/;.*Max-Age=0/);
  }
  // Both sessions were ended: neither cookie signs in on its own now.
  t.is((await get(`${admin.name}=${admin.value}`)).headers.location, '/console/sign-in');
});

test.serial("a console on a custom host over plain http: rack_session (no Secure cookie there), a sibling's second cookie is refused and cleared, no app may be named for its host", async (t) => {
  const other = await RackDaemon.create({ RACK_DOMAIN: 'example.test', RACK_CONSOLE_HOST: 'console.example.test' });
  const ctx = await browser.newContext();
  try {
    const token = await other.createToken('admin-console');
    const named = await other.ssh(['apps:create', 'console']);
    t.is(named.code, 1);
    t.regex(named.stderr, /an app called console would answer on console\.example\.test, which is rack's own host name/);
    const pushed = await other.push(await other.appRepo('node-hello', 'console'));
    t.not(pushed.code, 0);
    t.regex(pushed.stderr, /an app called console would answer on console\.example\.test/);
    t.is((await other.ssh(['apps', '--json'])).stdout.trim(), '[]');
    const base = `http://console.example.test:${other.httpPort}`;
    await signIn(ctx, base, token);
    const own = (await ctx.cookies()).find((c) => c.name === 'rack_session');
    t.like(own, { domain: 'console.example.test', secure: false, httpOnly: true });
    // x.example.test is app x's default host: every app is a sibling of the console here.
    const evil = await consoleSession(other, 'console.example.test', await other.createToken('evil-console'));
    plant = [`rack_session=${evil.value}; Domain=example.test; Path=/`];
    await visitNeighbour(ctx, 'x.example.test');
    t.is((await ctx.cookies()).filter((c) => c.name === 'rack_session').length, 2);
    const p = await ctx.newPage();
    const answer = await p.goto(`${base}/console/`);
    t.is(answer?.status(), 400);
    t.regex(await p.textContent('body') ?? '', /two rack session cookies/);
    t.deepEqual((await ctx.cookies()).filter((c) => c.name === 'rack_session'), [], 'both cleared');
    await signIn(ctx, base, token);
    await p.goto(`${base}/console/`);
    t.is(new URL(p.url()).pathname, '/console/');
  } finally {
    await ctx.close();
    await other.destroy();
  }
});

test('session cookie names, attributes and clearing', (t) => {
  t.deepEqual(sessionCookieFor({ secure: false, hostname: 'rack.localhost' }), { name: '__Host-rack_session', secure: true });
  t.deepEqual(sessionCookieFor({ secure: false, hostname: '127.0.0.1' }), { name: '__Host-rack_session', secure: true });
  t.deepEqual(sessionCookieFor({ secure: true, hostname: 'rack.example.com' }), { name: '__Host-rack_session', secure: true });
  t.deepEqual(sessionCookieFor({ secure: false, hostname: 'rack.example.com' }), { name: 'rack_session', secure: false });
  t.deepEqual(cookieValues('a=1; rack_session=x; __Host-rack_session=y; rack_session=z', 'rack_session'), ['x', 'z']);
  t.deepEqual(clearedCookies({ name: '__Host-rack_session', secure: true }, 'rack.localhost'), ['__Host-rack_session=; Path=/; HttpOnly; SameSite=Strict; Secure; Max-Age=0']);
  t.deepEqual(clearedCookies({ name: 'rack_session', secure: false }, 'rack.example.com'), [
    'rack_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0',
    'rack_session=; Path=/; HttpOnly; SameSite=Strict; Domain=rack.example.com; Max-Age=0',
    'rack_session=; Path=/; HttpOnly; SameSite=Strict; Domain=example.com; Max-Age=0',
  ]);
});
