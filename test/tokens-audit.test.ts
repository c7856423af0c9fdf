import test from 'ava';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { keypair, RackDaemon } from './support/rack-daemon.js';

// Tokens and the audit log, driven with the real ssh client; the token checks go to rackd's own
// HTTP listener (its Unix socket), where the router forwards rack's host name.
let rack: RackDaemon;
let devKey: string;
let http: Agent;

interface AuditEntry {
  id: number;
  actor: { kind: string; name: string };
  via: string;
  address: string;
  app: string | null;
  action: string;
  detail: string;
  outcome: string;
}

const THROTTLE = 4;

test.before(async () => {
  rack = await RackDaemon.create();
  // A small throttle so the test reaches it quickly; the window outlasts the file.
  await rack.stop();
  await rack.start({ RACK_LOGIN_THROTTLE: `${THROTTLE}/600` });
  for (const app of ['shop', 'blog']) {
    const r = await rack.ssh(['apps:create', app]);
    if (r.code !== 0) throw new Error(r.stderr);
  }
  const dev = await keypair(rack.work, 'dev');
  devKey = dev.priv;
  const add = await rack.ssh(['keys:add', 'dev', '--app', 'shop'], { input: await readFile(dev.pub, 'utf8') });
  if (add.code !== 0) throw new Error(add.stderr);
  http = new Agent({ connect: { socketPath: join(rack.home, 'api.sock') } });
});
test.after.always(async () => {
  await http?.close();
  await rack?.destroy();
});

/** A request as the router forwards it: from `address`, per X-Forwarded-For. */
async function call(path: string, token: string | undefined, address: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const headers: Record<string, string> = { 'x-forwarded-for': address };
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
  const res = await request(`http://rack${path}`, { dispatcher: http, headers });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

async function createToken(args: string[]): Promise<string> {
  const r = await rack.ssh(['tokens:create', ...args]);
  if (r.code !== 0) throw new Error(r.stderr);
  const token = /rack_[A-Za-z0-9_-]{43}/.exec(r.stdout)?.[0];
  if (!token) throw new Error(`no token in: ${r.stdout}`);
  return token;
}

async function audit(args: string[] = [], key?: string): Promise<AuditEntry[]> {
  const r = await rack.ssh(['audit', '--json', ...args], key ? { key } : {});
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as AuditEntry[];
}

/** Whether any file under dir holds the text (LevelDB's tables and log included). */
async function anyFileHolds(dir: string, text: string): Promise<boolean> {
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const content = await readFile(join(entry.parentPath ?? entry.path, entry.name)).catch(() => Buffer.alloc(0));
    if (content.includes(text)) return true;
  }
  return false;
}

test.serial('tokens:create shows a rack_ token once; rack keeps only its hash and never logs it', async (t) => {
  const r = await rack.ssh(['tokens:create', 'ci-shop', '--app', 'shop', '--deploy-only', '--expires', '30d']);
  t.is(r.code, 0, r.stderr);
  const token = /rack_[A-Za-z0-9_-]{43}/.exec(r.stdout)?.[0];
  t.truthy(token);
  t.regex(r.stdout, /Created deploy token ci-shop for shop, expires/);

  const list = await rack.ssh(['tokens']);
  t.regex(list.stdout, /NAME\s+ROLE\s+APPS\s+EXPIRES\s+LAST USED/);
  t.regex(list.stdout, /ci-shop\s+deploy\s+shop\s+20\d\d-/);
  t.false(list.stdout.includes(token!));
  const json = await rack.ssh(['tokens', '--json']);
  const listed = JSON.parse(json.stdout) as Record<string, unknown>[];
  t.deepEqual(Object.keys(listed[0]!).sort(), ['apps', 'createdAt', 'createdBy', 'expiresAt', 'lastUsedAt', 'name', 'role']);
  t.is(listed[0]!['lastUsedAt'], null);

  // Used once over HTTP: last use is recorded; the token is nowhere on disk.
  const used = await call('/api/v1/apps', token, '192.0.2.10');
  t.not(used.status, 401);
  const after = JSON.parse((await rack.ssh(['tokens', '--json'])).stdout) as { lastUsedAt: string | null }[];
  t.truthy(after[0]!.lastUsedAt);
  t.false(await anyFileHolds(rack.home, token!), 'the token itself is stored nowhere in RACK_HOME');
  t.false(rack.output.includes(token!), 'nor logged');
});

test.serial('bad tokens:create input is refused with one line and creates nothing', async (t) => {
  const cases: [string[], RegExp][] = [
    [['tokens:create', 'bad/name'], /invalid token name/],
    [['tokens:create', 'x', '--deploy-only'], /--deploy-only needs at least one --app APP/],
    [['tokens:create', 'x', '--expires', 'soon'], /expected a duration such as 30d/],
    [['tokens:create', 'x', '--expires', '0d'], /expected a duration/],
    [['tokens:create', 'x', '--app', 'nope'], /no app|nope/],
    [['tokens:create', 'x', '--app', '../shop'], /invalid app name/],
    [['tokens:create', 'ci-shop'], /a token named "ci-shop" already exists/],
    [['tokens:revoke', 'nothing'], /no token named "nothing"/],
  ];
  for (const [args, message] of cases) {
    const r = await rack.ssh(args);
    t.not(r.code, 0, args.join(' '));
    t.regex(r.stderr, message, args.join(' '));
    t.is(r.stderr.trim().split('\n').length, 1, args.join(' '));
  }
  const names = (JSON.parse((await rack.ssh(['tokens', '--json'])).stdout) as { name: string }[]).map((x) => x.name);
  t.deepEqual(names, ['ci-shop']);
  // Only admins manage tokens.
  const byDev = await rack.ssh(['tokens:create', 'mine', '--app', 'shop'], { key: devKey });
  t.regex(byDev.stderr, /key "dev" may not run tokens:create: it is an app key, and only admin keys may/);
});

test.serial('a revoked token is refused at once; unknown and missing tokens get 401', async (t) => {
  const token = await createToken(['short-lived', '--app', 'blog']);
  t.not((await call('/api/v1/apps', token, '192.0.2.20')).status, 401);
  t.is((await rack.ssh(['tokens:revoke', 'short-lived'])).code, 0);
  const revoked = await call('/api/v1/apps', token, '192.0.2.20');
  t.is(revoked.status, 401);
  t.is((JSON.parse(revoked.body) as { error: { code: string } }).error.code, 'unauthorized');
  const missing = await call('/api/v1/apps', undefined, '192.0.2.20');
  t.is(missing.status, 401);
  t.regex(String(missing.headers['www-authenticate']), /^Bearer/);
  const git = await call('/shop.git/info/refs?service=git-receive-pack', undefined, '192.0.2.20');
  t.is(git.status, 401);
  t.regex(String(git.headers['www-authenticate']), /^Basic realm="rack"/, 'git sends credentials after a Basic challenge');
});

test.serial('a good token between bad ones does not clear the address: the throttle still trips', async (t) => {
  const good = await createToken(['interleaved']);
  const guess = `rack_${'B'.repeat(43)}`;
  const address = '198.51.100.20';
  // A guesser who holds one valid token of its own tries it after every guess.
  for (let i = 0; i < THROTTLE - 1; i++) {
    t.is((await call('/api/v1/apps', guess, address)).status, 401);
    t.is((await call('/api/v1/apps', good, address)).status, 200);
  }
  t.is((await call('/api/v1/apps', guess, address)).status, 401);
  t.is((await call('/api/v1/apps', guess, address)).status, 429);
  t.is((await call('/api/v1/apps', good, address)).status, 429);
});

test.serial('failed logins from one address are slowed down with 429, over HTTP and ssh alike', async (t) => {
  const good = await createToken(['throttle-check']);
  const guess = `rack_${'A'.repeat(43)}`;
  for (let i = 0; i < THROTTLE; i++) t.is((await call('/api/v1/apps', guess, '198.51.100.7')).status, 401);
  const blocked = await call('/api/v1/apps', good, '198.51.100.7');
  t.is(blocked.status, 429, 'even a good token waits while its address is blocked');
  t.true(Number(blocked.headers['retry-after']) > 0);
  t.is((JSON.parse(blocked.body) as { error: { code: string } }).error.code, 'throttled');
  // Another address is not affected.
  t.not((await call('/api/v1/apps', good, '198.51.100.8')).status, 429);

  // The same throttle guards ssh: an unknown key from this host, THROTTLE times, then even the admin key waits.
  const stranger = await keypair(rack.work, 'stranger');
  for (let i = 0; i < THROTTLE; i++) t.not((await rack.ssh(['apps'], { key: stranger.priv })).code, 0);
  const admin = await rack.ssh(['apps']);
  t.not(admin.code, 0, 'the host is throttled for ssh too');
  // And over HTTP from that address (the router forwards 127.0.0.1 for local clients).
  t.is((await call('/api/v1/apps', good, '127.0.0.1')).status, 429);
});

test.serial('audit records every change with who, from where and what, never a value', async (t) => {
  // The ssh throttle above blocked 127.0.0.1; a fresh start forgets it (the log persists).
  await rack.stop();
  await rack.start({ RACK_LOGIN_THROTTLE: `${THROTTLE}/600` });
  const secret = 'sup3r-s3cret-value';
  t.is((await rack.ssh(['config:set', `DATABASE_URL=${secret}`, 'MODE=x', '-a', 'shop'])).code, 0);
  t.is((await rack.ssh(['config:unset', 'MODE', '-a', 'shop'])).code, 0);
  t.is((await rack.ssh(['domains:add', 'shop.example.com', '-a', 'shop'])).code, 0);
  const refused = await rack.ssh(['config:set', 'X=1', '-a', 'blog'], { key: devKey });
  t.not(refused.code, 0);

  const entries = await audit();
  const find = (action: string, app?: string) => entries.find((e) => e.action === action && (app === undefined || e.app === app));
  const set = find('config:set', 'shop')!;
  t.like(set, { actor: { kind: 'key', name: 'admin' }, via: 'ssh', address: '127.0.0.1', detail: 'DATABASE_URL MODE', outcome: 'ok' });
  t.like(find('config:unset', 'shop'), { detail: 'MODE', outcome: 'ok' });
  t.like(find('domains:add', 'shop'), { detail: 'shop.example.com', outcome: 'ok' });
  t.like(find('config:set', 'blog'), { actor: { kind: 'key', name: 'dev' }, outcome: 'forbidden' });
  t.like(find('apps:create', 'shop'), { outcome: 'ok' });
  t.like(find('keys:add'), { app: null, detail: 'dev shop' });
  t.like(find('tokens:create'), { detail: 'throttle-check' });
  t.like(find('tokens:revoke'), { detail: 'short-lived' });
  t.true(entries.every((e, i) => i === 0 || e.id < entries[i - 1]!.id), 'newest first');
  t.false(JSON.stringify(entries).includes(secret));
  // Reads are not changes.
  t.falsy(find('config'));

  // Text form, and one app's entries.
  const text = await rack.ssh(['audit', '-a', 'shop']);
  t.regex(text.stdout, /TIME\s+BY\s+FROM\s+APP\s+ACTION\s+OUTCOME\s+DETAIL/);
  t.regex(text.stdout, /key admin\s+ssh 127\.0\.0\.1\s+shop\s+config:set\s+ok\s+DATABASE_URL MODE/);
  t.false(text.stdout.includes(' blog '));
});

test.serial('an app key reads its own apps audit entries only', async (t) => {
  const own = await audit(['-a', 'shop'], devKey);
  t.true(own.length > 0);
  t.true(own.every((e) => e.app === 'shop'));
  const all = await rack.ssh(['audit'], { key: devKey });
  t.regex(all.stderr, /may read the audit log of its apps only: add -a APP/);
  const other = await rack.ssh(['audit', '-a', 'blog'], { key: devKey });
  t.regex(other.stderr, /may not run audit on blog/);
  const bad = await rack.ssh(['audit', '-n', '0']);
  t.regex(bad.stderr, /-n takes a count from 1 to 1000/);
});
