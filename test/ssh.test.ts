import test from 'ava';
import { keypair, RackDaemon } from './support/rack-daemon.js';

let rack: RackDaemon;
test.before(async () => {
  rack = await RackDaemon.create();
});
test.after.always(async () => {
  await rack?.destroy();
});

test('an unknown key is refused', async (t) => {
  const stranger = await keypair(rack.work, 'stranger');
  const result = await rack.ssh(['apps'], { key: stranger.priv });
  t.is(result.code, 255);
  t.regex(result.stderr, /Permission denied \(publickey\)/);
  const push = await rack.ssh(['git-receive-pack', "'/stolen'"], { key: stranger.priv });
  t.is(push.code, 255);
  const apps = await rack.ssh(['apps', '--json']);
  t.false((JSON.parse(apps.stdout) as { name: string }[]).some((a) => a.name === 'stolen'));
});

test('help and version answer', async (t) => {
  const help = await rack.ssh(['help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /releases \[-a APP\] \[--json\]/);
  const version = await rack.ssh(['version']);
  t.regex(version.stdout, /^rack \d+\.\d+\.\d+/);
});

test('bad commands get one clear line and a non-zero exit', async (t) => {
  const cases: [string[], RegExp][] = [
    [['frobnicate'], /unknown command "frobnicate"/],
    [['apps', 'extra'], /wrong number of arguments/],
    [['apps', '--bogus'], /Unknown option '--bogus'/],
    [['releases', '-a', '../etc'], /invalid app name/],
    [['releases', '-a', 'nope'], /no app named "nope"/],
    [['apps;', 'rm', '-rf', '/'], /shell operator ";" is not allowed/],
    [['apps:create', 'Bad_Name'], /invalid app name/],
  ];
  for (const [args, pattern] of cases) {
    const result = await rack.ssh(args);
    t.is(result.code, 1, args.join(' '));
    t.regex(result.stderr, pattern, args.join(' '));
    t.is(result.stderr.trim().split('\n').length, 1, `one line for ${args.join(' ')}`);
  }
});

test.serial('the router answers 404 for unknown hosts and 503 for an app with nothing running', async (t) => {
  const unknown = await rack.get('nobody-here');
  t.is(unknown.status, 404);
  // The page does not echo the Host (a client's words on rack's page).
  t.regex(unknown.body, /No app is served at this address/);
  t.notRegex(unknown.body, /nobody-here/);
  const created = await rack.ssh(['apps:create', 'empty-app']);
  t.is(created.code, 0, created.stderr);
  t.is((await rack.get('empty-app')).status, 503);
});

test.serial('app selection: -a, then the login name, then the only app, else a list', async (t) => {
  await rack.ssh(['apps:create', 'second-app']);
  const none = await rack.ssh(['releases']);
  t.is(none.code, 1);
  t.regex(none.stderr, /which app\? add -a APP \(one of: empty-app, second-app\)/);
  const byLogin = await rack.ssh(['apps:info', '--json'], { user: 'second-app' });
  t.is(JSON.parse(byLogin.stdout).name, 'second-app');
  const byFlag = await rack.ssh(['apps:info', '--json', '-a', 'empty-app'], { user: 'second-app' });
  t.is(JSON.parse(byFlag.stdout).name, 'empty-app');
  const byEnv = await rack.ssh(['apps:info', '--json'], { extra: ['-o', 'SetEnv=RACK_APP=empty-app'] });
  t.is(JSON.parse(byEnv.stdout).name, 'empty-app');
});
