import test from 'ava';
import { spawn } from 'node:child_process';
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { api } from './support/api-client.js';
import { commitFile, exec, keypair, RackDaemon, type Result } from './support/rack-daemon.js';

// Postgres and Redis add-ons with the real services, the real ssh client and apps that use them
// through the variables rack sets (test/fixtures/addon-app: the pg and redis npm packages).

let rack: RackDaemon;
// A short schedule, so the daily backup is seen within the test.
const SCHEDULE = { RACK_BACKUP_INTERVAL: '40', RACK_BACKUP_KEEP: '2' };
let dev: string;
let ci: string;
const dirs: Record<string, string> = {};
/** The manual backup of shop-postgres (numbers are shared with the daily schedule's backups). */
let manual = '';

test.before(async () => {
  rack = await RackDaemon.create(SCHEDULE);
  for (const app of ['shop', 'other', 'stranger']) {
    dirs[app] = await rack.appRepo('addon-app', app);
    const push = await rack.push(dirs[app]!);
    if (push.code !== 0) throw new Error(push.stderr);
  }
  const devKey = await keypair(rack.work, 'dev');
  const ciKey = await keypair(rack.work, 'ci');
  await rack.ssh(['keys:add', 'dev', '--app', 'shop'], { input: await readFile(devKey.pub, 'utf8') });
  await rack.ssh(['keys:add', 'ci', '--app', 'shop', '--deploy-only'], { input: await readFile(ciKey.pub, 'utf8') });
  dev = devKey.priv;
  ci = ciKey.priv;
});
test.after.always(async () => {
  await rack?.destroy();
});

const ssh = (args: string[], opts: { key?: string; input?: string } = {}) => rack.ssh(args, opts);
const ok = (t: { is: (a: unknown, b: unknown, m?: string) => void }, r: Result) => t.is(r.code, 0, `${r.stderr}${r.stdout}`);
const json = async <T>(args: string[]): Promise<T> => JSON.parse((await ssh([...args, '--json'])).stdout) as T;
const config = (app: string) => json<Record<string, string>>(['config', '-a', app]);
const releaseCount = async (app: string) => (await json<unknown[]>(['releases', '-a', app])).length;
const body = async (p: Promise<{ status: number; body: string }>) => (await p).body.trim();

/** `ssh rack ARGS > file` and `ssh rack ARGS < file`, bytes untouched. */
async function sshFile(args: string[], file: string, direction: 'out' | 'in'): Promise<Result> {
  const handle = await open(file, direction === 'out' ? 'w' : 'r');
  try {
    return await new Promise((resolve, reject) => {
      const stdio: ['pipe' | number, 'pipe' | number, 'pipe'] = direction === 'out' ? ['ignore' as unknown as 'pipe', handle.fd, 'pipe'] : [handle.fd, 'pipe', 'pipe'];
      const child = spawn('ssh', [...rack.sshArgs(), '--', ...args], { stdio });
      let stdout = '';
      let stderr = '';
      child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    });
  } finally {
    await handle.close();
  }
}

async function container(name: string): Promise<{ Config: { User: string }; HostConfig: Record<string, unknown>; NetworkSettings: { Networks: Record<string, { IPAddress: string }>; Ports: Record<string, unknown> } }> {
  const id = (await readFile(join(rack.home, 'instance-id'), 'utf8')).trim();
  const r = await exec('docker', ['inspect', `rack-${id}-addon-${name}`]);
  return (JSON.parse(r.stdout) as never[])[0]!;
}

test.serial('bad input is refused with one line, and nothing is made', async (t) => {
  const cases: [string[], RegExp, string?][] = [
    [['addons:create', 'mysql', '-a', 'shop'], /unknown add-on type "mysql": rack offers postgres and redis/],
    [['addons:create', 'postgres', '--as', 'Bad_Name', '-a', 'shop'], /invalid add-on name "Bad_Name"/],
    [['addons:create', 'postgres', '--alias', '1x', '-a', 'shop'], /invalid alias "1x"/],
    [['addons:create', 'postgres', '-a', 'nope'], /no app named "nope"/],
    [['addons:info', 'nope'], /no add-on named "nope"/],
    [['addons:info', '../etc'], /invalid add-on name/],
    [['addons:destroy', 'nope'], /to go on, run: addons:destroy nope --confirm nope/],
    [['addons:create', 'postgres', '-a', 'shop'], /key "ci" may not run addons:create on shop: it is a deploy-only key/, ci],
    [['addons'], /key "ci" may not run addons: it is a deploy-only key/, ci],
  ];
  for (const [args, message, key] of cases) {
    const r = await ssh(args, key ? { key } : {});
    t.is(r.code, 1, args.join(' '));
    t.regex(r.stderr, message, args.join(' '));
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  t.is((await ssh(['addons'])).stdout.trim(), 'no add-ons yet: addons:create postgres -a APP');
  t.is(await releaseCount('shop'), 1);
});

test.serial('postgres: attached as a release; rows survive a redeploy, a rollback and a rackd restart', async (t) => {
  const created = await ssh(['addons:create', 'postgres', '-a', 'shop']);
  ok(t, created);
  t.regex(created.stdout, /Creating shop-postgres \(postgres 15\) for shop/);
  t.regex(created.stdout, /accepting connections after [\d.]+ s/);
  t.regex(created.stdout, /Attaching shop-postgres to shop as DATABASE: DATABASE_URL, DATABASE_HOST, DATABASE_PORT, DATABASE_USER, DATABASE_PASSWORD, DATABASE_NAME/);
  t.regex(created.stdout, /Attached shop-postgres as DATABASE: released v2/);
  const vars = await config('shop');
  t.regex(vars['DATABASE_URL']!, /^postgres:\/\/app:[0-9a-f]{48}@shop-postgres:5432\/app$/);
  const releases = await json<{ version: number; description: string }[]>(['releases', '-a', 'shop']);
  t.is(releases[0]!.description, 'Attach shop-postgres as DATABASE');

  t.is(await body(rack.post('shop', '/rows?n=100')), 'added 100');
  t.is(await body(rack.get('shop', '/rows')), '100');

  // The service: unprivileged, no capabilities, nothing published, restarted by Docker.
  const c = await container('shop-postgres');
  t.is(c.Config.User, 'postgres');
  t.deepEqual(c.HostConfig['CapDrop'], ['ALL']);
  t.deepEqual(c.HostConfig['PortBindings'] ?? {}, {});
  t.is((c.HostConfig['RestartPolicy'] as { Name: string }).Name, 'unless-stopped');
  t.deepEqual(Object.keys(c.NetworkSettings.Networks).length, 1);

  await commitFile(dirs['shop']!, 'CHANGES', 'two\n', 'second');
  ok(t, await rack.push(dirs['shop']!));
  t.is(await body(rack.get('shop', '/rows')), '100', 'after a redeploy');

  // A rollback to before the attachment keeps it: the app never loses (or regains) a database by rolling back.
  const rollback = await ssh(['releases:rollback', 'v1', '-a', 'shop']);
  ok(t, rollback);
  t.regex(rollback.stdout, /add-ons stay as attached now \(shop-postgres as DATABASE\), not as in v1/);
  t.is((await config('shop'))['DATABASE_URL'], vars['DATABASE_URL']);
  t.is(await body(rack.get('shop', '/rows')), '100', 'after a rollback');

  await rack.stop();
  await rack.start(SCHEDULE);
  t.is(await body(rack.get('shop', '/rows')), '100', 'after a rackd restart');

  const info = await json<{ type: string; version: string; status: string; size: number; attached: unknown[] }>(['addons:info', 'shop-postgres']);
  t.is(info.type, 'postgres');
  t.regex(info.version, /^15\.\d+$/);
  t.true(['healthy', 'running'].includes(info.status), info.status);
  t.true(info.size > 1_000_000, String(info.size));
  t.deepEqual(info.attached, [{ app: 'shop', alias: 'DATABASE' }]);
  const text = await ssh(['addons:info', 'shop-postgres']);
  t.regex(text.stdout, /^type:\s+postgres 15\.\d+$/m);
  t.regex(text.stdout, /^attached:\s+shop as DATABASE$/m);
  // A key of the app sees it; the password is in the app's config anyway.
  ok(t, await ssh(['addons:info', 'shop-postgres'], { key: dev }));
});

test.serial('backup, delete the rows, restore: the rows are back; the restore can be undone', async (t) => {
  const backup = await ssh(['addons:backup', 'shop-postgres']);
  ok(t, backup);
  manual = /Backed up shop-postgres: (b\d+) \(/.exec(backup.stdout)?.[1] ?? '';
  t.truthy(manual, backup.stdout);
  t.is(await body(rack.post('shop', '/rows/delete')), 'deleted 100');
  t.is(await body(rack.get('shop', '/rows')), '0');
  const restore = await ssh(['addons:restore', 'shop-postgres', manual]);
  ok(t, restore);
  const safety = /Backed up shop-postgres as it was: (b\d+)/.exec(restore.stdout)?.[1];
  t.truthy(safety, restore.stdout);
  t.regex(restore.stdout, new RegExp(`undo with: addons:restore shop-postgres ${safety}`));
  t.is(await body(rack.get('shop', '/rows')), '100');
  const list = await json<{ id: string; trigger: string; bytes: number }[]>(['addons:backups', 'shop-postgres']);
  t.deepEqual(
    list.filter((b) => b.trigger !== 'daily').map((b) => [b.id, b.trigger]),
    [[safety, 'before-restore'], [manual, 'manual']],
  );
  const file = join(rack.home, 'backups', 'shop-postgres', `${manual}.pgdump`);
  t.is((await stat(file)).mode & 0o777, 0o600);
  t.is((await stat(join(rack.home, 'backups'))).mode & 0o777, 0o700);
  t.is((await readFile(file)).subarray(0, 5).toString(), 'PGDMP');
});

test.serial('a second app attached under an alias reads the same rows; an app not attached cannot reach them', async (t) => {
  ok(t, await ssh(['config:set', 'DB_ALIAS=ANALYTICS', '-a', 'other']));
  const attach = await ssh(['addons:attach', 'shop-postgres', '--as', 'analytics', '-a', 'other']);
  ok(t, attach);
  t.regex(attach.stdout, /Attaching shop-postgres to other as ANALYTICS: ANALYTICS_URL/);
  t.is((await config('other'))['ANALYTICS_URL'], (await config('shop'))['DATABASE_URL']);
  t.is(await body(rack.get('other', '/rows')), '100');
  t.is(await body(rack.get('other', '/probe?host=shop-postgres&port=5432')), 'open');

  // Neither by name nor by address: the service is on no network of stranger's.
  t.regex(await body(rack.get('stranger', '/probe?host=shop-postgres&port=5432')), /^(ENOTFOUND|EAI_AGAIN)$/);
  for (const net of Object.values((await container('shop-postgres')).NetworkSettings.Networks)) {
    t.not(await body(rack.get('stranger', `/probe?host=${net.IPAddress}&port=5432`)), 'open', net.IPAddress);
  }
  // A key of shop only may not attach shop's database to an app it has no right on.
  const r = await ssh(['addons:attach', 'shop-postgres', '-a', 'stranger'], { key: dev });
  t.is(r.code, 1);
  t.regex(r.stderr, /key "dev" may not run addons:attach on stranger/);
});

test.serial('over HTTP, a token of the app lists and backs up its add-ons; one of another app may not', async (t) => {
  const mine = await rack.createToken('shop-api', ['--app', 'shop']);
  const theirs = await rack.createToken('stranger-api', ['--app', 'stranger']);
  const list = await api(rack, 'GET', '/api/v1/addons', { token: mine });
  t.is(list.status, 200, list.text);
  t.deepEqual((list.json as { name: string }[]).map((a) => a.name), ['shop-postgres']);
  const backup = await api(rack, 'POST', '/api/v1/addons/shop-postgres/backups', { token: mine });
  t.is(backup.status, 201, backup.text);
  t.regex((backup.json as { id: string }).id, /^b\d+$/);
  t.deepEqual((await api(rack, 'GET', '/api/v1/addons', { token: theirs })).json, []);
  const refused = await api(rack, 'GET', '/api/v1/addons/shop-postgres', { token: theirs });
  t.is(refused.status, 403);
  t.regex(refused.text, /may not run addons:info on add-on shop-postgres: it is attached to none of its apps/);
});

test.serial('redis: keys persist across a restart of its container; export, import and wrong kinds', async (t) => {
  const created = await ssh(['addons:create', 'redis', '-a', 'shop']);
  ok(t, created);
  t.regex((await config('shop'))['REDIS_URL']!, /^redis:\/\/default:[0-9a-f]{48}@shop-redis:6379$/);
  t.is(await body(rack.post('shop', '/key?k=greeting&v=hello')), 'ok');
  await exec('docker', ['restart', `rack-${(await readFile(join(rack.home, 'instance-id'), 'utf8')).trim()}-addon-shop-redis`]);
  let after = '';
  for (let i = 0; i < 50 && after !== 'hello'; i++) {
    after = await body(rack.get('shop', '/key?k=greeting'));
    if (after !== 'hello') await new Promise((r) => setTimeout(r, 200));
  }
  t.is(after, 'hello', 'appendonly keeps what was written');

  const dump = join(rack.work, 'redis.rdb');
  const exported = await sshFile(['addons:export', 'shop-redis'], dump, 'out');
  ok(t, exported);
  t.is((await readFile(dump)).subarray(0, 5).toString(), 'REDIS');
  ok(t, await rack.post('shop', '/key?k=greeting&v=changed').then((r) => ({ code: r.status === 200 ? 0 : 1, stdout: r.body, stderr: '' })));
  const imported = await sshFile(['addons:import', 'shop-redis'], dump, 'in');
  ok(t, imported);
  t.is(await body(rack.get('shop', '/key?k=greeting')), 'hello');

  // Garbage, and a dump of the other kind, are refused before anything changes.
  const garbage = join(rack.work, 'garbage');
  await (await open(garbage, 'w')).close();
  await exec('bash', ['-c', `printf 'not a dump' > ${garbage}`]);
  const bad = await sshFile(['addons:import', 'shop-redis'], garbage, 'in');
  t.is(bad.code, 1);
  t.regex(bad.stderr, /that is not an RDB file \(redis-cli --rdb\); shop-redis is unchanged/);
  const wrong = await ssh(['addons:restore', 'shop-redis', `shop-postgres:${manual}`]);
  t.is(wrong.code, 1);
  t.regex(wrong.stderr, new RegExp(`shop-postgres:${manual} is a postgres backup; shop-redis is redis`));
  const pgWithRdb = await sshFile(['addons:import', 'shop-postgres'], dump, 'in');
  t.is(pgWithRdb.code, 1);
  t.regex(pgWithRdb.stderr, /that is not a pg_dump custom-format dump/);
  t.is(await body(rack.get('shop', '/key?k=greeting')), 'hello');
  t.is(await body(rack.get('shop', '/rows')), '100');

  const connect = await ssh(['addons:connect', 'shop-redis', '--', 'GET', 'greeting']);
  ok(t, connect);
  t.is(connect.stdout.trim(), 'hello');
  const psql = await ssh(['addons:connect', 'shop-postgres', '--', '-tAc', "'select count(*) from items'"]);
  ok(t, psql);
  t.is(psql.stdout.trim(), '100');
  // The apps' role is no superuser: no programs run in the service (which is on every attached
  // app's network), and the client itself runs apart, on one app's network.
  const role = await ssh(['addons:connect', 'shop-postgres', '--', '-tAc', "'select rolsuper from pg_roles where rolname = current_user'"]);
  t.is(role.stdout.trim(), 'f');
  const program = await ssh(['addons:connect', 'shop-postgres', '--', '-c', `"COPY (SELECT 1) TO PROGRAM 'true'"`]);
  t.is(program.code, 1);
  t.regex(program.stderr, /permission denied|must be superuser/);
});

test.serial("a key of one app can do nothing with an add-on attached only to another's", async (t) => {
  ok(t, await ssh(['addons:create', 'redis', '--as', 'lone', '--alias', 'LONE', '-a', 'stranger']));
  ok(t, await ssh(['addons:backup', 'lone']));
  const lone = (await json<{ id: string }[]>(['addons:backups', 'lone']))[0]!.id;
  const cases: string[][] = [
    ['addons:info', 'lone'],
    ['addons:backup', 'lone'],
    ['addons:backups', 'lone'],
    ['addons:restore', 'lone', lone],
    ['addons:restore', 'shop-redis', `lone:${lone}`],
    ['addons:export', 'lone'],
    ['addons:import', 'lone'],
    ['addons:connect', 'lone', '--', 'GET', 'x'],
    ['addons:attach', 'lone', '-a', 'shop'],
    ['addons:destroy', 'lone', '--confirm', 'lone'],
  ];
  for (const args of cases) {
    const r = await ssh(args, { key: dev, input: '' });
    t.is(r.code, 1, args.join(' '));
    t.regex(r.stderr, /key "dev" may not run addons:\w+ on add-on lone: it is attached to none of its apps/, args.join(' '));
  }
  t.true((await json<{ name: string }[]>(['addons'])).some((a) => a.name === 'lone'), 'an admin sees it');
  t.deepEqual((JSON.parse((await ssh(['addons', '--json'], { key: dev })).stdout) as { name: string }[]).map((a) => a.name).includes('lone'), false);
});

test.serial('clashes and wrong orders are refused with one line, and change nothing', async (t) => {
  ok(t, await ssh(['config:set', 'LEGACY_URL=postgres://elsewhere', '-a', 'other']));
  const before = { shop: await releaseCount('shop'), other: await releaseCount('other'), stranger: await releaseCount('stranger') };
  const cases: [string[], RegExp][] = [
    [['addons:create', 'postgres', '--as', 'shop-postgres', '-a', 'stranger'], /an add-on named shop-postgres already exists/],
    [['addons:create', 'redis', '-a', 'shop'], /REDIS is already the alias of add-on shop-redis; attach the new add-on with --as ANOTHER_NAME/],
    [['addons:attach', 'shop-postgres', '-a', 'shop'], /shop-postgres is already attached to shop/],
    [['addons:attach', 'shop-redis', '--as', 'legacy', '-a', 'other'], /LEGACY_URL is already in the config \(set by hand\)/],
    [['config:set', 'DATABASE_URL=postgres://mine', '-a', 'shop'], /DATABASE_URL is set by add-on shop-postgres; run addons:detach shop-postgres to remove it/],
    [['config:unset', 'DATABASE_PASSWORD', '-a', 'shop'], /DATABASE_PASSWORD is set by add-on shop-postgres/],
    [['addons:detach', 'shop-redis', '-a', 'stranger'], /shop-redis is not attached to stranger/],
    [['addons:destroy', 'shop-postgres', '--confirm', 'shop-postgres'], /shop-postgres is attached to other \(as ANALYTICS\), shop \(as DATABASE\); detach it first/],
    [['addons:restore', 'shop-postgres', 'b99'], /shop-postgres has no backup b99/],
    [['addons:restore', 'shop-postgres', '../b1'], /expected a backup like b3 or OTHER-ADDON:b3/],
    [['addons:destroy', 'shop-redis', '--confirm', 'shop-redis'], /shop-redis is attached to shop/],
  ];
  for (const [args, message] of cases) {
    const r = await ssh(args);
    t.is(r.code, 1, args.join(' '));
    t.regex(r.stderr, message, args.join(' '));
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  t.deepEqual({ shop: await releaseCount('shop'), other: await releaseCount('other'), stranger: await releaseCount('stranger') }, before);
  t.deepEqual((await json<{ name: string }[]>(['addons'])).map((a) => a.name), ['lone', 'shop-postgres', 'shop-redis']);
});

test.serial('apps:destroy keeps a shared add-on; detach, then destroy takes a final backup and removes the volume', async (t) => {
  const gone = await ssh(['apps:destroy', 'other', '--confirm', 'other']);
  ok(t, gone);
  t.regex(gone.stdout, /Kept add-on shop-postgres, still attached to shop/);
  t.is(await body(rack.get('shop', '/rows')), '100');
  t.deepEqual((await json<{ attached: unknown[] }>(['addons:info', 'shop-postgres'])).attached, [{ app: 'shop', alias: 'DATABASE' }]);

  const detach = await ssh(['addons:detach', 'shop-postgres', '-a', 'shop']);
  ok(t, detach);
  t.regex(detach.stdout, /Detached shop-postgres: released v\d+/);
  const vars = await config('shop');
  t.false(Object.keys(vars).some((k) => k.startsWith('DATABASE_')), Object.keys(vars).join(' '));
  t.truthy(vars['REDIS_URL']);
  t.is(Object.keys((await container('shop-postgres')).NetworkSettings.Networks).length, 0, 'on no network once detached');
  t.is(await body(rack.get('shop', '/rows')), 'no DATABASE_URL');

  const volume = (await json<{ volume: string }>(['addons:info', 'shop-postgres'])).volume;
  const destroy = await ssh(['addons:destroy', 'shop-postgres', '--confirm', 'shop-postgres']);
  ok(t, destroy);
  const kept = /Final backup (b\d+) \([^)]+\) kept in (\S+)/.exec(destroy.stdout);
  t.truthy(kept, destroy.stdout);
  t.is((await readFile(kept![2]!)).subarray(0, 5).toString(), 'PGDMP');
  t.is((await exec('docker', ['volume', 'inspect', volume])).code, 1, 'the volume is gone');
  t.deepEqual((await json<{ name: string }[]>(['addons'])).map((a) => a.name), ['lone', 'shop-redis']);
});

test.serial('a scheduled backup is taken once the interval has passed', async (t) => {
  let daily: { id: string; trigger: string }[] = [];
  for (let i = 0; i < 90 && daily.length === 0; i++) {
    daily = (await json<{ id: string; trigger: string }[]>(['addons:backups', 'shop-redis'])).filter((b) => b.trigger === 'daily');
    if (daily.length === 0) await new Promise((r) => setTimeout(r, 1000));
  }
  t.true(daily.length > 0, 'a daily backup');
  t.regex((await ssh(['addons:info', 'shop-redis'])).stdout, /next scheduled \d{4}-/);
});
