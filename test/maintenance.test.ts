import test from 'ava';
import { once } from 'node:events';
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { checkAppRoute } from '../daemon/router/router-protocol.js';
import { Router } from '../daemon/router/router.js';
import { api } from './support/api-client.js';
import { join } from 'node:path';
import { commitFile, exec, RackDaemon } from './support/rack-daemon.js';

// Maintenance mode (issue 33): the router answers 503 + Retry-After and a page; the app's
// processes keep running (the same container before, during and after); ACME challenges still pass.

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function get(port: number, host: string, path = '/'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { host }, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('the router: a route in maintenance answers 503 with Retry-After and its page; ACME challenges still pass', async (t) => {
  const app = http.createServer((_req, res) => res.end('app'));
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  const router = new Router({ bind: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }) });
  const port = await router.start();
  try {
    const upstream = { host: '127.0.0.1', port: (app.address() as AddressInfo).port };
    router.setApp('shop', ['shop.test'], [upstream], undefined, undefined, {});
    router.setChallenge('tok_1', 'shop.test', 'tok_1.thumbprint');
    const down = await get(port, 'shop.test');
    t.is(down.status, 503);
    t.is(down.headers['retry-after'], '60');
    t.regex(down.headers['content-type'] ?? '', /^text\/html/);
    t.regex(down.body, /Down for maintenance/);
    t.regex(down.body, /shop is being worked on/);
    const challenge = await get(port, 'shop.test', '/.well-known/acme-challenge/tok_1');
    t.is(challenge.status, 200);
    t.is(challenge.body, 'tok_1.thumbprint');
    router.setApp('shop', ['shop.test'], [upstream], undefined, undefined, { page: '<h1>back soon</h1>' });
    t.is((await get(port, 'shop.test')).body, '<h1>back soon</h1>');
    // The state file and a handoff carry it: the route reads back with its page.
    t.deepEqual(checkAppRoute(JSON.parse(JSON.stringify(router.routes()[0]))).maintenance, { page: '<h1>back soon</h1>' });
    router.setApp('shop', ['shop.test'], [upstream]);
    const up = await get(port, 'shop.test');
    t.deepEqual([up.status, up.body], [200, 'app']);
  } finally {
    await router.stop();
    app.close();
  }
});

let rack: RackDaemon;
let pages: Server;
let pagesPort = 0;
/** Whether the page's server has the page; without it, only rackd's copy can show it. */
let pageThere = true;
test.before(async () => {
  // The app's own maintenance page, on loopback (allowed for this rack by RACK_FETCH_ALLOW).
  pages = http.createServer((req, res) => {
    if (req.url === '/down.html' && pageThere) res.end('<h1>site is down for a bit</h1>');
    else res.writeHead(404).end();
  });
  pages.listen(0, '127.0.0.1');
  await once(pages, 'listening');
  pagesPort = (pages.address() as AddressInfo).port;
  rack = await RackDaemon.create({ RACK_FETCH_ALLOW: '127.0.0.1' });
  const dir = await rack.appRepo('node-hello', 'site');
  const push = await rack.push(dir);
  if (push.code !== 0) throw new Error(push.stderr);
});
test.after.always(async () => {
  pages?.close();
  await rack?.destroy();
});

const webContainers = async () =>
  (await exec('docker', ['ps', '-q', '--no-trunc', '--filter', 'label=rack.app=site', '--filter', 'label=rack.role=process'])).stdout.split('\n').filter(Boolean);

test.serial('maintenance:on answers 503 + Retry-After through the router, the process keeps running, maintenance:off serves again', async (t) => {
  await rack.drained('site');
  const before = await webContainers();
  t.is(before.length, 1);
  t.is((await get(rack.httpPort, 'site.localhost')).status, 200);

  const on = await rack.ssh(['maintenance:on', '-a', 'site']);
  t.is(on.code, 0, on.stderr);
  t.regex(on.stdout, /-----> Maintenance on for site/);
  const down = await get(rack.httpPort, 'site.localhost');
  t.is(down.status, 503);
  t.is(down.headers['retry-after'], '60');
  t.regex(down.body, /Down for maintenance/);
  const shown = JSON.parse((await rack.ssh(['maintenance', '-a', 'site', '--json'])).stdout) as { maintenance: boolean; pageUrl: unknown };
  t.deepEqual([shown.maintenance, shown.pageUrl], [true, null]);
  t.deepEqual(await webContainers(), before, 'the process runs on');
  const ps = JSON.parse((await rack.ssh(['ps', '-a', 'site', '--json'])).stdout) as { state: string }[];
  t.deepEqual(ps.map((p) => p.state), ['up']);

  const off = await rack.ssh(['maintenance:off', '-a', 'site']);
  t.is(off.code, 0, off.stderr);
  const up = await get(rack.httpPort, 'site.localhost');
  t.deepEqual([up.status, up.body], [200, 'hello from rack v1\n']);
  t.deepEqual(await webContainers(), before, 'the same container serves again');
  t.regex((await rack.ssh(['maintenance', '-a', 'site'])).stdout, /site: maintenance is off/);

  const audit = JSON.parse((await rack.ssh(['audit', '-a', 'site', '--json'])).stdout) as { action: string; outcome: string }[];
  t.deepEqual(
    audit.filter((e) => e.action.startsWith('maintenance')).map((e) => [e.action, e.outcome]),
    [['maintenance:off', 'ok'], ['maintenance:on', 'ok']],
  );
});

test.serial("without --page, app.json's maintenance_page_url of the serving commit is the page", async (t) => {
  const dir = join(rack.work, 'site');
  await commitFile(dir, 'app.json', JSON.stringify({ maintenance_page_url: `http://127.0.0.1:${pagesPort}/down.html` }), 'maintenance page');
  const push = await rack.push(dir);
  t.is(push.code, 0, push.stderr);
  const on = await rack.ssh(['maintenance:on', '-a', 'site']);
  t.is(on.code, 0, on.stderr);
  t.deepEqual(await get(rack.httpPort, 'site.localhost').then((a) => [a.status, a.body]), [503, '<h1>site is down for a bit</h1>']);
  const shown = JSON.parse((await rack.ssh(['maintenance', '-a', 'site', '--json'])).stdout) as { pageUrl: unknown };
  t.is(shown.pageUrl, `http://127.0.0.1:${pagesPort}/down.html`);
  t.is((await rack.ssh(['maintenance:off', '-a', 'site'])).code, 0);
  await rack.drained('site');
});

test.serial('--page URL: rackd fetches the page once and the router serves that copy', async (t) => {
  const on = await rack.ssh(['maintenance:on', '--page', `http://127.0.0.1:${pagesPort}/down.html`, '-a', 'site']);
  t.is(on.code, 0, on.stderr);
  const down = await get(rack.httpPort, 'site.localhost');
  t.deepEqual([down.status, down.body], [503, '<h1>site is down for a bit</h1>']);
  // Served from the copy: the page's own server no longer has it.
  pageThere = false;
  t.is((await get(rack.httpPort, 'site.localhost', '/any/path')).body, '<h1>site is down for a bit</h1>');
  t.is((await rack.ssh(['maintenance:off', '-a', 'site'])).code, 0);
  t.is((await get(rack.httpPort, 'site.localhost')).status, 200);
});

test.serial('a page that cannot be had, or an internal address, changes nothing: one line and exit 1', async (t) => {
  const internal = await rack.ssh(['maintenance:on', '--page', 'http://169.254.169.254/latest/meta-data/', '-a', 'site']);
  t.is(internal.code, 1);
  t.regex(internal.stderr, /^ ! {5}169\.254\.169\.254 is a loopback, private or reserved address/);
  const missing = await rack.ssh(['maintenance:on', '--page', `http://127.0.0.1:${pagesPort}/down.html`, '-a', 'site']);
  t.is(missing.code, 1);
  t.is(missing.stderr.split('\n').length, 2, missing.stderr);
  t.regex(missing.stderr, /answered 404, not 200/);
  t.is((await get(rack.httpPort, 'site.localhost')).status, 200);
  pageThere = true;
});

test.serial('the API switches it too, with the same shape as maintenance --json', async (t) => {
  const token = await rack.createToken('ops');
  const on = await api(rack, 'PUT', '/api/v1/apps/site/maintenance', { token, body: {} });
  t.is(on.status, 200, on.text);
  // The app's app.json names its page since the push above.
  t.like(on.json as object, { app: 'site', maintenance: true, pageUrl: `http://127.0.0.1:${pagesPort}/down.html` });
  t.is((await get(rack.httpPort, 'site.localhost')).status, 503);
  const read = await api(rack, 'GET', '/api/v1/apps/site/maintenance', { token });
  t.deepEqual(read.json, JSON.parse((await rack.ssh(['maintenance', '-a', 'site', '--json'])).stdout));
  const off = await api(rack, 'DELETE', '/api/v1/apps/site/maintenance', { token });
  t.is(off.status, 200, off.text);
  t.deepEqual(off.json, { app: 'site', maintenance: false, since: null, pageUrl: null });
  t.is((await get(rack.httpPort, 'site.localhost')).status, 200);
});

/** One request to the Console through the router, as its pages send it (same origin, htmx). */
function consoleRequest(method: string, path: string, opts: { cookie?: string; form?: Record<string, string> } = {}): Promise<Answer> {
  const origin = `http://rack.localhost:${rack.httpPort}`;
  const body = opts.form === undefined ? undefined : new URLSearchParams(opts.form).toString();
  const headers: Record<string, string> = { host: `rack.localhost:${rack.httpPort}`, origin, 'hx-request': 'true' };
  if (opts.cookie !== undefined) headers['cookie'] = opts.cookie;
  if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: rack.httpPort, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within a minute: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test.serial('the Console switch on the Processes page turns maintenance on and off', async (t) => {
  const token = await rack.createToken('console-ops');
  const signIn = await consoleRequest('POST', '/console/sign-in', { form: { token } });
  const cookie = String(signIn.headers['set-cookie']?.[0] ?? '').split(';')[0]!;
  t.regex(cookie, /rack_session=/);
  const before = await consoleRequest('GET', '/console/apps/site/processes', { cookie });
  t.is(before.status, 200, before.body);
  t.regex(before.body, /Maintenance mode is <strong>off<\/strong>/);
  const on = await consoleRequest('POST', '/console/apps/site/processes/maintenance', { cookie, form: { on: 'on' } });
  t.is(on.status, 200, on.body);
  await until('the app answers 503', async () => (await get(rack.httpPort, 'site.localhost')).status === 503);
  t.regex((await consoleRequest('GET', '/console/apps/site/processes/panel', { cookie })).body, /Maintenance mode is <strong>on<\/strong>/);
  const off = await consoleRequest('POST', '/console/apps/site/processes/maintenance', { cookie, form: { on: 'off' } });
  t.is(off.status, 200, off.body);
  await until('the app answers 200', async () => (await get(rack.httpPort, 'site.localhost')).status === 200);
  const audit = JSON.parse((await rack.ssh(['audit', '-a', 'site', '-n', '2', '--json'])).stdout) as { action: string; actor: { name: string } }[];
  t.deepEqual(audit.map((e) => [e.action, e.actor.name]), [['maintenance:off', 'console-ops'], ['maintenance:on', 'console-ops']]);
});
