import test from 'ava';
import { readFile } from 'node:fs/promises';
import { keypair, RackDaemon } from './support/rack-daemon.js';

// Keys with three roles against two apps whose names share a prefix.
let rack: RackDaemon;
let dev: string;
let ci: string;

test.before(async () => {
  rack = await RackDaemon.create();
  for (const app of ['shop', 'shop-prod']) {
    const r = await rack.ssh(['apps:create', app]);
    if (r.code !== 0) throw new Error(r.stderr);
  }
  const devKey = await keypair(rack.work, 'dev');
  const ciKey = await keypair(rack.work, 'ci');
  dev = devKey.priv;
  ci = ciKey.priv;
  const addDev = await rack.ssh(['keys:add', 'dev', '--app', 'shop'], { input: await readFile(devKey.pub, 'utf8') });
  if (addDev.code !== 0) throw new Error(addDev.stderr);
  const addCi = await rack.ssh(['keys:add', 'ci', '--app', 'shop', '--deploy-only'], { input: await readFile(ciKey.pub, 'utf8') });
  if (addCi.code !== 0) throw new Error(addCi.stderr);
});
test.after.always(async () => {
  await rack?.destroy();
});

test.serial('keys lists each key with its role and apps', async (t) => {
  const keys = JSON.parse((await rack.ssh(['keys', '--json'])).stdout) as { name: string; role: string; apps: string[] }[];
  t.deepEqual(
    keys.map((k) => [k.name, k.role, k.apps]),
    [
      ['admin', 'admin', []],
      ['ci', 'deploy', ['shop']],
      ['dev', 'app', ['shop']],
    ],
  );
});

test.serial('a deploy-only key pushes its app and reads its history, and nothing else', async (t) => {
  const dir = await rack.appRepo('node-hello', 'shop');
  const push = await rack.push(dir, 'main', { key: ci });
  t.is(push.code, 0, push.stderr);
  t.is((await rack.get('shop')).status, 200);

  for (const args of [['releases'], ['builds'], ['logs', '-n', '5'], ['builds:info', 'b1'], ['releases:info', 'v1']]) {
    const r = await rack.ssh([...args, '-a', 'shop'], { key: ci });
    t.is(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  }
  const releases = JSON.parse((await rack.ssh(['releases', '--json', '-a', 'shop'], { key: ci })).stdout) as { createdBy: string }[];
  t.is(releases[0]!.createdBy, 'ci');

  const refused: [string[], RegExp][] = [
    [['config:set', 'A=1', '-a', 'shop'], /key "ci" may not run config:set on shop: it is a deploy-only key/],
    [['releases:rollback', '-a', 'shop'], /key "ci" may not run releases:rollback on shop: it is a deploy-only key/],
    [['run', '-a', 'shop', 'true'], /key "ci" may not run run on shop: it is a deploy-only key/],
    [['releases', '-a', 'shop-prod'], /key "ci" may not run releases on shop-prod: it has no right on shop-prod/],
    [['keys'], /key "ci" may not run keys: it is a deploy-only key, and only admin keys may/],
    [['apps:destroy', 'shop', '--confirm', 'shop'], /only admin keys may/],
  ];
  for (const [args, pattern] of refused) {
    const r = await rack.ssh(args, { key: ci });
    t.is(r.code, 1, args.join(' '));
    t.regex(r.stderr, pattern);
  }
  const apps = JSON.parse((await rack.ssh(['apps', '--json'], { key: ci })).stdout) as { name: string }[];
  t.deepEqual(apps.map((a) => a.name), ['shop']);

  // Exact names: a key for shop has no right on shop-prod, nor may it create apps by pushing.
  const other = await rack.appRepo('node-hello', 'shop-prod');
  const pushOther = await rack.push(other, 'main', { key: ci });
  t.not(pushOther.code, 0);
  t.regex(pushOther.stderr, /key "ci" may not run git push on shop-prod: it has no right on shop-prod/);
  const fresh = await rack.appRepo('node-hello', 'brand-new');
  const pushNew = await rack.push(fresh, 'main', { key: ci });
  t.not(pushNew.code, 0);
  t.regex(pushNew.stderr, /may not run git push creating brand-new/);
  t.false(JSON.parse((await rack.ssh(['apps', '--json'])).stdout).some((a: { name: string }) => a.name === 'brand-new'));
});

test.serial('an app key manages its app and only its app', async (t) => {
  const set = await rack.ssh(['config:set', 'WHO=dev'], { key: dev }); // the key's only app is chosen
  t.is(set.code, 0, set.stderr);
  const releases = JSON.parse((await rack.ssh(['releases', '--json', '-a', 'shop'])).stdout) as { createdBy: string; description: string }[];
  t.deepEqual([releases[0]!.createdBy, releases[0]!.description], ['dev', 'Set WHO']);
  for (const args of [['config', '-a', 'shop-prod'], ['apps:create', 'mine'], ['keys:remove', 'ci']]) {
    const r = await rack.ssh(args, { key: dev });
    t.is(r.code, 1, args.join(' '));
    t.regex(r.stderr, /key "dev" may not run/);
  }
});

test.serial('a deploy-only key reads config key names, never values', async (t) => {
  const secret = 'hunter2-s3cret-value';
  const token = 'tok3n-abcdef';
  const set = await rack.ssh(['config:set', `SECRET_TOKEN=${secret}`, `BUILDPACK_URL=https://ci:${token}@127.0.0.1:1/bp.git`, '--no-deploy', '-a', 'shop']);
  t.is(set.code, 0, set.stderr);
  const release = /recorded (v\d+)/.exec(set.stdout)![1]!;
  // A build whose error (and so its log) names the buildpack URL: never with its credentials, to anyone.
  const build = await rack.ssh(['builds:create', '-a', 'shop']);
  t.not(build.code, 0);
  t.regex(build.stdout + build.stderr, /cannot fetch buildpack https:\/\/127\.0\.0\.1:1\/bp\.git/);
  t.false((build.stdout + build.stderr).includes(token));
  const builds = JSON.parse((await rack.ssh(['builds', '--json', '-a', 'shop'])).stdout) as { id: number }[];
  const failed = `b${builds[0]!.id}`;

  const asCi = (...args: string[]) => rack.ssh(args[0] === 'apps' ? args : [...args, '-a', 'shop'], { key: ci });
  const reads = [
    ['releases', '--json'], ['releases:info', release], ['releases:info', release, '--json'], ['apps', '--json'],
    ['builds', '--json'], ['builds:info', failed], ['builds:info', failed, '--json'], ['builds:logs', failed],
  ];
  for (const args of reads) {
    const r = await asCi(...args);
    t.is(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    t.false(r.stdout.includes(secret), args.join(' '));
    t.false(r.stdout.includes(token), args.join(' '));
    t.false(r.stdout.includes('hunt'), `${args.join(' ')} shows no part of a value`);
  }
  const releases = JSON.parse((await asCi('releases', '--json')).stdout) as { version: number; config: Record<string, string> }[];
  t.deepEqual(releases[0]!.config, { WHO: '•••', SECRET_TOKEN: '•••', BUILDPACK_URL: '•••' });
  const info = (await asCi('releases:info', release)).stdout;
  t.regex(info, /\+ SECRET_TOKEN=•••/);
  t.regex(info, /Config: +BUILDPACK_URL, SECRET_TOKEN, WHO/);
  t.regex((await asCi('builds:logs', failed)).stdout, /cannot fetch buildpack https:\/\/127\.0\.0\.1:1\/bp\.git/);
  t.is((await asCi('config')).code, 1);

  // Admin and app keys read values as before.
  for (const key of [undefined, dev]) {
    const json = JSON.parse((await rack.ssh(['releases', '--json', '-a', 'shop'], { key })).stdout) as { config: Record<string, string> }[];
    t.is(json[0]!.config['SECRET_TOKEN'], secret);
    t.regex((await rack.ssh(['releases:info', release, '-a', 'shop'], { key })).stdout, /\+ SECRET_TOKEN=hunt\.\.\./);
    t.false((await rack.ssh(['builds:logs', failed, '-a', 'shop'], { key })).stdout.includes(token));
  }
  const unset = await rack.ssh(['config:unset', 'BUILDPACK_URL', '--no-deploy', '-a', 'shop']);
  t.is(unset.code, 0, unset.stderr);
});

test.serial('keys:remove takes effect at once, and the last admin key stays', async (t) => {
  const last = await rack.ssh(['keys:remove', 'admin']);
  t.is(last.code, 1);
  t.regex(last.stderr, /"admin" is the last admin key and cannot be removed/);
  const removed = await rack.ssh(['keys:remove', 'ci']);
  t.is(removed.code, 0, removed.stderr);
  const r = await rack.ssh(['releases', '-a', 'shop'], { key: ci });
  t.is(r.code, 255);
  t.regex(r.stderr, /Permission denied/);
  const again = await rack.ssh(['keys:add', 'dev-again', '--app', 'shop'], { input: await readFile(`${dev}.pub`, 'utf8') });
  t.is(again.code, 1);
  t.regex(again.stderr, /already registered as "dev"/);
});
