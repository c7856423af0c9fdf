import test from 'ava';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Level } from 'level';
import { PROTOCOL_VERSION } from '../daemon/router/router-protocol.js';
import { api } from './support/api-client.js';
import { exec, keypair, RackDaemon, ROOT } from './support/rack-daemon.js';

// rack itself, against a real rackd over the real ssh client and through the router: which rack
// runs, its own releases (admin only), and a store newer than it refused at start.
const run = promisify(execFile);

let rack: RackDaemon;
let appKey: string;
let expected: { version: string; commit: string };

test.before(async () => {
  rack = await RackDaemon.create();
  const created = await rack.ssh(['apps:create', 'shop']);
  if (created.code !== 0) throw new Error(created.stderr);
  const key = await keypair(rack.work, 'shop-dev');
  const added = await rack.ssh(['keys:add', 'shop-dev', '--app', 'shop'], { input: await readFile(key.pub, 'utf8') });
  if (added.code !== 0) throw new Error(added.stderr);
  appKey = key.priv;
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  expected = { version: pkg.version, commit: (await run('git', ['rev-parse', 'HEAD'], { cwd: ROOT })).stdout.trim() };
});
test.after.always(async () => {
  await rack?.destroy();
});

interface Info {
  version: string;
  commit: string;
  schema: number;
  runtime: string;
  uptimeSeconds: number;
  startedAt: string;
  router: { pid: number; protocol: number; version: string | null; uptimeSeconds: number } | null;
}

async function routerPid(): Promise<number> {
  return (JSON.parse(await readFile(join(rack.home, 'router.json.pid'), 'utf8')) as { pid: number }).pid;
}

test('rack --json: version, the commit it was built from, schema, runtime, uptimes, the router process', async (t) => {
  const r = await rack.ssh(['rack', '--json']);
  t.is(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout) as Info;
  t.like(info, { version: expected.version, commit: expected.commit, schema: 2, runtime: 'docker' });
  t.true(info.uptimeSeconds >= 0);
  t.false(Number.isNaN(Date.parse(info.startedAt)));
  t.truthy(info.router);
  t.is(info.router!.pid, await routerPid());
  t.is(info.router!.protocol, PROTOCOL_VERSION);
  t.true(info.router!.uptimeSeconds >= 0);
  t.is(info.router!.version, expected.version, 'the router reports the version of the install it runs from');
});

test('rack, rack:info and version show the same, to any key', async (t) => {
  const r = await rack.ssh(['rack']);
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  t.is(lines[0], `rack ${expected.version}`);
  t.regex(r.stdout, new RegExp(`^Commit: +${expected.commit}$`, 'm'));
  t.regex(r.stdout, /^Schema: +v2$/m);
  t.regex(r.stdout, /^Runtime: +docker$/m);
  t.regex(r.stdout, /^Up: +\d+[dhms]/m);
  t.regex(r.stdout, new RegExp(`^Router: +pid ${await routerPid()}, protocol ${PROTOCOL_VERSION}, version ${expected.version.replace(/\./g, '\\.')}`, 'm'));
  for (const alias of ['rack:info', 'version']) {
    const other = await rack.ssh([alias], { key: appKey });
    t.is(other.code, 0, other.stderr);
    t.is(other.stdout.split('\n')[0], `rack ${expected.version}`);
  }
  const bad = await rack.ssh(['rack', 'extra']);
  t.is(bad.code, 1);
  t.is(bad.stderr, ' !     wrong number of arguments (usage: rack [--json])\n');
});

test('rack:releases: the install recorded at the first start, once; admin only', async (t) => {
  const r = await rack.ssh(['rack:releases', '--json']);
  t.is(r.code, 0, r.stderr);
  const releases = JSON.parse(r.stdout) as Record<string, unknown>[];
  t.is(releases.length, 1);
  t.like(releases[0], { id: 1, kind: 'install', version: expected.version, commit: expected.commit, from: null, status: 'succeeded', createdBy: 'rackd', schema: 2, failedStep: null });
  t.true((releases[0]!['durationMs'] as number) > 0);

  const text = await rack.ssh(['rack:releases']);
  t.is(text.code, 0);
  t.regex(text.stdout, /^ID +VERSION +FROM +RESULT +WHEN +TOOK +BY +DESCRIPTION$/m);
  t.regex(text.stdout, new RegExp(`^r1 +${expected.version.replace(/\./g, '\\.')} \\(${expected.commit.slice(0, 7)}\\) +- +succeeded .* rackd +Install `, 'm'));

  const refused = await rack.ssh(['rack:releases'], { key: appKey });
  t.is(refused.code, 1);
  t.is(refused.stdout, '');
  t.is(refused.stderr, ' !     key "shop-dev" may not run rack:releases: it is an app key, and only admin keys may\n');
});

test('the API: GET /api/v1/rack for any token, /api/v1/rack/releases for admins', async (t) => {
  const admin = await rack.createToken('root');
  const member = await rack.createToken('shop-token', ['--app', 'shop']);
  const info = await api(rack, 'GET', '/api/v1/rack', { token: member });
  t.is(info.status, 200, info.text);
  t.like(info.json, { version: expected.version, commit: expected.commit, schema: 2, runtime: 'docker' });
  t.is((info.json as Info).router?.pid, await routerPid());
  const releases = await api(rack, 'GET', '/api/v1/rack/releases', { token: admin });
  t.is(releases.status, 200, releases.text);
  t.like((releases.json as unknown[])[0], { id: 1, kind: 'install', status: 'succeeded' });
  const refused = await api(rack, 'GET', '/api/v1/rack/releases', { token: member });
  t.is(refused.status, 403);
  t.like(refused.json, { error: { code: 'forbidden' } });
  const spec = (await api(rack, 'GET', '/api/v1/openapi.json')).json as { paths: Record<string, unknown> };
  t.truthy(spec.paths['/rack']);
  t.truthy(spec.paths['/rack/releases']);
});

// Serial: it stops and restarts the one rackd the other tests share.
test.serial('a restart of the same build adds no release; a store newer than this rack is refused at start in one line', async (t) => {
  await rack.stop();
  await rack.start();
  const again = JSON.parse((await rack.ssh(['rack:releases', '--json'])).stdout) as unknown[];
  t.is(again.length, 1);

  await rack.stop();
  const db = new Level<string, unknown>(join(rack.home, 'db'), { valueEncoding: 'json' });
  await db.put('!schema!version', 7);
  await db.close();
  rack.output = '';
  const start = rack.start();
  const failed = await t.throwsAsync(start);
  t.regex(failed!.message, /rackd exited with 1/);
  const line = rack.output.split('\n').find((l) => l.startsWith('rackd: '));
  t.is(line, "rackd: the store's schema is v7; this rack reads up to v2: roll forward to a rack that reads v7 (the way from v7 down to v2 is not known)");

  const fixed = new Level<string, unknown>(join(rack.home, 'db'), { valueEncoding: 'json' });
  await fixed.put('!schema!version', 2);
  await fixed.close();
  await rack.start();
  t.is((await rack.ssh(['rack', '--json'])).code, 0);
});

test.serial('rackd migrate --to 1 takes the stopped store down; refused while rackd holds it; the next start goes up again', async (t) => {
  const migrate = (args: string[]) => exec(process.execPath, [join(ROOT, 'dist', 'daemon', 'main.js'), 'migrate', ...args], { env: { ...process.env, RACK_HOME: rack.home } });
  const busy = await migrate(['--to', '1']);
  t.is(busy.code, 1);
  t.regex(busy.stderr, /^ !     cannot open the store at .*: another process has it open\n$/);
  const usage = await migrate([]);
  t.is(usage.code, 1);
  t.is(usage.stderr, ' !     expected --to and a schema number (usage: rackd migrate --to N [--if-newer])\n');

  await rack.stop();
  const down = await migrate(['--to', '1']);
  t.is(down.code, 0, down.stderr);
  t.is(down.stdout, '-----> Migrated the store down: v2 → v1 (keys-list-their-apps)\n-----> The store is at schema v1\n');
  const again = await migrate(['--to', '1']);
  t.is(again.code, 1);
  t.is(again.stderr, " !     the store's schema is already v1; nothing to migrate down to v1\n");

  await rack.start();
  const info = JSON.parse((await rack.ssh(['rack', '--json'])).stdout) as Info;
  t.is(info.schema, 2);
});
