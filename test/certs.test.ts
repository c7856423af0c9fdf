import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { Agent, request } from 'undici';
import { exec, keypair, RackDaemon } from './support/rack-daemon.js';
import { freePort } from './support/free-port.js';
import { startPebble, type Pebble } from './support/pebble.js';
import { TestCa } from './support/test-certs.js';

// HTTPS end to end: rackd, its router, the real ssh and curl clients, and Let's Encrypt's Pebble as
// the ACME server, which validates http-01 by fetching the answer from rack's router itself.

const VALIDITY_S = 45;
let rack: RackDaemon;
let pebble: Pebble;
let ca: TestCa;
let memberKey: string;
let deployKey: string;


test.before(async () => {
  const httpPort = await freePort();
  pebble = await startPebble({ httpPort, validitySeconds: VALIDITY_S, blocklist: ['blocked.test'] });
  rack = await RackDaemon.create({
    RACK_HTTP_PORT: String(httpPort),
    RACK_ACME_DIRECTORY: pebble.directoryUrl,
    RACK_ACME_EMAIL: 'ops@example.com',
    NODE_EXTRA_CA_CERTS: pebble.tlsCaFile,
  });
  ca = await TestCa.create();
  const dir = await rack.appRepo('https-echo', 'shop');
  const push = await rack.push(dir);
  if (push.code !== 0) throw new Error(push.stderr);
  for (const args of [['apps:create', 'blog'], ['domains:add', 'www.shop.test', '-a', 'shop']]) {
    const r = await rack.ssh(args);
    if (r.code !== 0) throw new Error(r.stderr);
  }
  const member = await keypair(rack.work, 'blogdev');
  memberKey = member.priv;
  await rack.ssh(['keys:add', 'blogdev', '--app', 'blog'], { input: await readFile(member.pub, 'utf8') });
  const deploy = await keypair(rack.work, 'ci');
  deployKey = deploy.priv;
  await rack.ssh(['keys:add', 'ci', '--app', 'shop', '--deploy-only'], { input: await readFile(deploy.pub, 'utf8') });
});
test.after.always(async () => {
  await rack?.destroy();
  await pebble?.stop();
});

interface CertRow {
  host: string;
  app: string;
  source: string;
  certificate: { fingerprint: string; notAfter: string; issuer: string } | null;
  status: string;
  acme: { failures: number; lastError?: string; nextAttemptAt?: string } | null;
}

async function certs(app = 'shop'): Promise<CertRow[]> {
  const r = await rack.ssh(['certs', '-a', app, '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as CertRow[];
}

const row = async (host: string): Promise<CertRow | undefined> => (await certs()).find((c) => c.host === host);

/** `curl` over HTTPS through the router, trusting only `caFile`. */
async function curl(host: string, caFile: string, path = '/'): Promise<{ code: number; body: string; stderr: string }> {
  const r = await exec('curl', ['-sS', '--fail', '--cacert', caFile, '--resolve', `${host}:${rack.httpsPort}:127.0.0.1`, `https://${host}:${rack.httpsPort}${path}`]);
  return { code: r.code, body: r.stdout, stderr: r.stderr };
}

/** The fingerprint a fresh TLS connection is shown for `host` (SHA-256, hex, lower case). */
function servedFingerprint(host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: rack.httpsPort, servername: host, rejectUnauthorized: false });
    socket.once('secureConnect', () => {
      const cert = socket.getPeerX509Certificate();
      socket.destroy();
      resolve(cert === undefined ? '' : cert.fingerprint256.replace(/:/g, '').toLowerCase());
    });
    socket.once('error', reject);
  });
}

test.serial('certs:add refuses a bad certificate clearly, changes nothing, then serves a good one over https', async (t) => {
  const good = await ca.leaf({ names: ['www.shop.test'] });
  const caFile = join(rack.work, 'test-ca.pem');
  await writeFile(caFile, ca.ca.cert);
  const other = await TestCa.create('another CA');
  const cases: Array<[string, string, string, RegExp]> = [
    ['a key that does not match', 'www.shop.test', good.cert + (await ca.key()), /private key does not match/],
    ['an expired certificate', 'www.shop.test', (await ca.leaf({ names: ['www.shop.test'], fromDays: -30, toDays: -1 })).cert + good.key, /private key does not match|expired/],
    ['a host not attached to any app', 'nobody.test', good.cert + good.key, /nobody.test is not attached to any app/],
    ['garbage', 'www.shop.test', 'not a certificate at all\n', /no certificate found/],
    ['a broken chain', 'www.shop.test', good.cert + other.ca.cert + good.key, /chain is broken/],
    ['a certificate for another name', 'shop.localhost', good.cert + good.key, /does not cover shop.localhost/],
    ['nothing on stdin', 'www.shop.test', '', /give the certificate chain and its key on stdin/],
    ['a path trick for a host', '../../etc/passwd', good.cert + good.key, /invalid host name/],
  ];
  for (const [what, host, input, message] of cases) {
    const r = await rack.ssh(['certs:add', host], { input });
    t.not(r.code, 0, what);
    t.regex(r.stderr, message, what);
    t.is(r.stderr.trim().split('\n').length, 1, `${what}: one line`);
  }
  // An expired leaf with its own key: the expiry is what is refused.
  const expired = await ca.leaf({ names: ['www.shop.test'], fromDays: -30, toDays: -1 });
  const r0 = await rack.ssh(['certs:add', 'www.shop.test'], { input: expired.cert + expired.key });
  t.regex(r0.stderr, /the certificate expired on/);
  t.is((await row('www.shop.test'))?.certificate, null, 'nothing was installed by the refusals');

  // Rights: a key of another app, a deploy-only key, and rack's own host for a non-admin.
  const blogDev = await rack.ssh(['certs:add', 'www.shop.test'], { key: memberKey, input: good.cert + good.key });
  t.regex(blogDev.stderr, /may not run certs:add on shop/);
  const ci = await rack.ssh(['certs:add', 'www.shop.test'], { key: deployKey, input: good.cert + good.key });
  t.regex(ci.stderr, /may not run certs:add on shop: it is a deploy-only key/);
  const consoleHost = await rack.ssh(['certs:add', 'rack.localhost'], { key: memberKey, input: good.cert + good.key });
  t.regex(consoleHost.stderr, /may not run certs:add on rack/);

  const added = await rack.ssh(['certs:add', 'www.shop.test'], { input: good.cert + ca.ca.cert + good.key });
  t.is(added.code, 0, added.stderr);
  t.regex(added.stdout, /Certificate for www.shop.test installed/);
  const served = await curl('www.shop.test', caFile, '/hello');
  t.is(served.code, 0, served.stderr);
  t.like(JSON.parse(served.body), { proto: 'https', host: `www.shop.test:${rack.httpsPort}`, url: '/hello' });
  t.is(await servedFingerprint('www.shop.test'), new X509Certificate(good.cert).fingerprint256.replace(/:/g, '').toLowerCase());
  const listed = await row('www.shop.test');
  t.is(listed?.source, 'manual');
  t.regex(listed?.status ?? '', /^ok, \d+ days left/);

  // Stored for rackd alone.
  t.is((await stat(join(rack.home, 'certs'))).mode & 0o777, 0o700);
  t.is((await stat(join(rack.home, 'certs', 'www.shop.test.pem'))).mode & 0o777, 0o600);

  // Redirect and HSTS, per app.
  t.is((await rack.ssh(['certs:redirect', 'on', '-a', 'shop'])).code, 0);
  t.is((await rack.ssh(['certs:hsts', 'on', '-a', 'shop'])).code, 0);
  const plain = await exec('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', '-H', 'Host: www.shop.test', `http://127.0.0.1:${rack.httpPort}/cart?x=1`]);
  t.is(plain.stdout, `308 https://www.shop.test:${rack.httpsPort}/cart?x=1`);
  const headers = await exec('curl', ['-sS', '-D', '-', '-o', '/dev/null', '--cacert', caFile, '--resolve', `www.shop.test:${rack.httpsPort}:127.0.0.1`, `https://www.shop.test:${rack.httpsPort}/`]);
  t.regex(headers.stdout, /strict-transport-security: max-age=31536000/i);
  t.is((await rack.ssh(['certs:redirect', 'off', '-a', 'shop'])).code, 0);
  t.is((await rack.ssh(['certs:hsts', 'off', '-a', 'shop'])).code, 0);

  const removed = await rack.ssh(['certs:remove', 'www.shop.test']);
  t.is(removed.code, 0, removed.stderr);
  t.not((await curl('www.shop.test', caFile)).code, 0, 'no certificate is served once removed');
  const again = await rack.ssh(['certs:remove', 'www.shop.test']);
  t.regex(again.stderr, /www.shop.test has no certificate/);
});

test.serial('certs:auto orders from the ACME server (which fetches the challenge from the router), serves it, and renews it under load', async (t) => {
  // Whatever the test before left: a hand-added certificate is never replaced by an ordered one.
  await rack.ssh(['certs:remove', 'www.shop.test']);
  const on = await rack.ssh(['certs:auto', 'on', '-a', 'shop']);
  t.is(on.code, 0, on.stderr);
  t.regex(on.stdout, /shop.localhost: issued/);
  t.regex(on.stdout, /www.shop.test: issued/);
  // Pebble validated for real: the router answered its fetch of each challenge.
  const routerLog = await readFile(join(rack.home, 'logs', 'router.log'), 'utf8');
  t.true(routerLog.includes('"host":"www.shop.test"') && routerLog.includes('answered an ACME http-01 challenge'));

  const root = join(rack.work, 'pebble-root.pem');
  await writeFile(root, await pebble.rootPem());
  const served = await curl('www.shop.test', root);
  t.is(served.code, 0, served.stderr);
  t.like(JSON.parse(served.body), { proto: 'https' });
  const first = (await row('www.shop.test'))!;
  t.is(first.source, 'acme');
  t.regex(first.status, /^ok, renews /);
  t.is(await servedFingerprint('www.shop.test'), first.certificate!.fingerprint);

  // The certificate lives 45 s, so it is due after 30: keep requests going over new and kept
  // connections until the renewed one is served, and count what fails.
  const kept = new Agent({ connect: { ca: await readFile(root, 'utf8'), servername: 'www.shop.test' } });
  const rootPem = await readFile(root, 'utf8');
  let failures = 0;
  let served200 = 0;
  let stop = false;
  const loop = async (fresh: boolean): Promise<void> => {
    while (!stop) {
      const agent = fresh ? new Agent({ connect: { ca: rootPem, servername: 'www.shop.test' } }) : kept;
      try {
        const res = await request(`https://127.0.0.1:${rack.httpsPort}/`, { dispatcher: agent, headers: { host: 'www.shop.test' } });
        await res.body.text();
        if (res.statusCode === 200) served200 += 1;
        else failures += 1;
      } catch {
        failures += 1;
      } finally {
        if (fresh) await agent.close();
      }
    }
  };
  const loops = [loop(false), loop(false), loop(true), loop(true)];
  const deadline = Date.now() + (VALIDITY_S + 60) * 1000;
  let renewed: CertRow | undefined;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = await row('www.shop.test');
    if (now?.certificate && now.certificate.fingerprint !== first.certificate!.fingerprint) {
      renewed = now;
      break;
    }
  }
  // A few more seconds on the new certificate, then stop.
  await new Promise((r) => setTimeout(r, 2000));
  stop = true;
  await Promise.all(loops);
  await kept.close();
  t.truthy(renewed, 'renewed before the first certificate expired');
  t.true(Date.parse(renewed!.certificate!.notAfter) > Date.parse(first.certificate!.notAfter));
  t.is(await servedFingerprint('www.shop.test'), renewed!.certificate!.fingerprint);
  t.true(served200 > 50, `served ${served200}`);
  t.is(failures, 0);
  t.log(`renewal under load: ${served200} requests served, ${failures} failed`);
});

test.serial('a failed order shows in certs and the app logs, with a next try, and does not hang', async (t) => {
  const add = await rack.ssh(['domains:add', 'blocked.test', '-a', 'shop']);
  t.is(add.code, 0, add.stderr);
  t.regex(add.stdout, /a certificate for blocked.test is being ordered/);
  let blocked: CertRow | undefined;
  for (let i = 0; i < 240 && blocked?.acme?.lastError === undefined; i++) {
    await new Promise((r) => setTimeout(r, 500));
    blocked = await row('blocked.test');
  }
  t.is(blocked?.certificate, null);
  t.is(blocked?.acme?.failures, 1);
  t.regex(blocked?.status ?? '', /^failed: .*blocked.*\(next try /i);
  t.true(Date.parse(blocked!.acme!.nextAttemptAt!) > Date.now());
  const logs = await rack.ssh(['logs', '-a', 'shop', '-n', '200']);
  t.regex(logs.stdout, /rack\[certs\]: certificate order for blocked.test failed \(1 in a row; next try/);
  // The text table says the same.
  const table = await rack.ssh(['certs', '-a', 'shop']);
  t.regex(table.stdout, /blocked.test\s+shop\s+acme\s+-\s+failed: /);
  // Removing the domain forgets it.
  t.is((await rack.ssh(['domains:remove', 'blocked.test', '-a', 'shop'])).code, 0);
  t.is(await row('blocked.test'), undefined);
});

test.serial('the API lists certificates, adds and removes one, and refuses a bad one with bad_argument', async (t) => {
  const token = await rack.createToken('certs-api', ['--app', 'shop']);
  const api = async (method: 'GET' | 'POST' | 'DELETE' | 'PATCH', path: string, body?: unknown) => {
    const res = await request(`http://127.0.0.1:${rack.httpPort}/api/v1${path}`, {
      method,
      headers: { host: 'rack.localhost', authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> & Array<Record<string, unknown>> };
  };
  const listed = await api('GET', '/apps/shop/certs');
  t.is(listed.status, 200);
  t.deepEqual(listed.body.map((r) => r['host']).sort(), ['shop.localhost', 'www.shop.test']);
  const good = await ca.leaf({ names: ['shop.localhost'] });
  const refused = await api('POST', '/certs', { host: 'shop.localhost', pem: good.cert + (await ca.key()) });
  t.is(refused.status, 400);
  t.like(refused.body, { error: { code: 'bad_argument' } });
  const added = await api('POST', '/certs', { host: 'shop.localhost', pem: good.cert + good.key });
  t.is(added.status, 201, JSON.stringify(added.body));
  t.like(added.body, { host: 'shop.localhost', app: 'shop', certificate: { names: ['shop.localhost'] } });
  t.is((await api('PATCH', '/apps/shop/https/redirect', { on: true })).status, 200);
  const plain = await exec('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Host: shop.localhost', `http://127.0.0.1:${rack.httpPort}/`]);
  t.is(plain.stdout, '308');
  t.is((await api('PATCH', '/apps/shop/https/redirect', { on: false })).status, 200);
  t.is((await api('DELETE', '/certs/shop.localhost')).status, 200);
});
