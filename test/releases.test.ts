import test from 'ava';
import { quote } from 'shell-quote';
import { commitFile, exec, RackDaemon } from './support/rack-daemon.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

// One app whose history grows test by test, in order.
const app = 'rel-story';
let rack: RackDaemon;
let dir: string;

test.before(async () => {
  rack = await RackDaemon.create();
  dir = await rack.appRepo('node-env', app);
  const push = await rack.push(dir);
  if (push.code !== 0) throw new Error(push.stderr);
});
test.after.always(async () => {
  await rack?.destroy();
});

/** The words are quoted for the remote side, as a user quotes them for `ssh rack ...`. */
const cmd = (...words: string[]) => rack.ssh([quote([...words, '-a', app])]);
const env = async (key: string) => rack.get(app, `/env/${key}`);

interface Release {
  version: number;
  status: string;
  current: boolean;
  description: string;
  config: Record<string, string>;
  build: number;
}
const releases = async (): Promise<Release[]> => JSON.parse((await cmd('releases', '--json')).stdout) as Release[];

const UNUSUAL: Record<string, string> = {
  SPACES: 'a b  c',
  QUOTES: `it's "quoted"`,
  DOLLAR: '$HOME ${PATH} $(id)',
  BACKTICKS: '`id`',
  EQUALS: 'x=y=z',
  NEWLINES: 'line1\nline2\n',
  UTF8: 'ünïcødé ✓ 日本',
  BACKSLASH: 'back\\slash\\n',
  SHELLY: 'a; rm -rf / | cat > x && y',
  EMPTY: '',
};

test.serial('config:set keeps unusual values exact, in one release, and the app sees them', async (t) => {
  const before = await releases();
  const set = await cmd('config:set', ...Object.entries(UNUSUAL).map(([k, v]) => `${k}=${v}`));
  t.is(set.code, 0, set.stderr);
  t.regex(set.stdout, /Set SPACES, QUOTES, .*: released v2/);
  const after = await releases();
  t.is(after.length, before.length + 1);
  t.deepEqual(after[0]!.config, UNUSUAL);
  t.true(after[0]!.current);
  t.is(after[0]!.build, before[0]!.build, 'no rebuild');
  for (const [key, value] of Object.entries(UNUSUAL)) {
    t.deepEqual(await env(key), { status: 200, body: value }, key);
    const got = await cmd('config:get', key);
    t.is(got.stdout, value, `config:get ${key}`);
  }
  t.deepEqual(await env('DYNO'), { status: 200, body: 'web.1' }, 'the platform names the process, as Heroku does');
});

test.serial('bad config input is refused with one line and makes no release', async (t) => {
  const before = await releases();
  const cases: [string[], RegExp][] = [
    // Over ssh a value past 32 KiB makes a command line past its limit; the API meets the value's own (config-input).
    [['config:set', `BIG=${'x'.repeat(33 * 1024)}`], /command line too long \(max 32768 bytes\)/],
    [['config:set', 'NOEQUALS'], /expected KEY=VALUE/],
    [['config:set', '1BAD=x'], /invalid config key "1BAD"/],
    [['config:set', 'GOOD=1', 'BAD-KEY=2'], /invalid config key "BAD-KEY"/],
    [['config:set', 'PORT=1'], /PORT is set by rack/],
    [['config:set', 'SPACES=a b  c'], /nothing changed/],
    [['config:unset', 'NOT_THERE'], /has no config var NOT_THERE/],
    [['config:get', 'NOT_THERE'], /has no config var NOT_THERE/],
    [['releases:rollback', 'v99'], /has no release v99/],
    [['releases:rollback', 'twelve'], /expected a release like v3/],
    [['releases:info', 'v0'], /expected a release like v3/],
    [['builds:info', 'b42'], /has no build b42/],
  ];
  for (const [args, pattern] of cases) {
    const r = await cmd(...args);
    t.is(r.code, 1, args.join(' ').slice(0, 60));
    t.regex(r.stderr, pattern);
    t.is(r.stderr.trim().split('\n').length, 1);
  }
  t.deepEqual(await releases(), before);
  t.is((await env('GOOD')).status, 404);
});

test.serial('unset, rollback and promote change what the app serves, and keep every release', async (t) => {
  const unset = await cmd('config:unset', 'SPACES', 'UTF8');
  t.is(unset.code, 0, unset.stderr);
  t.regex(unset.stdout, /Unset SPACES, UTF8: released v3/);
  t.is((await env('SPACES')).status, 404);

  const rollback = await cmd('releases:rollback');
  t.is(rollback.code, 0, rollback.stderr);
  t.regex(rollback.stdout, /Rollback to v2: released v4/);
  t.regex(rollback.stdout, /undo with: ssh rack releases:rollback v3 -a rel-story/);
  t.deepEqual(await env('SPACES'), { status: 200, body: UNUSUAL['SPACES']! });

  const promote = await cmd('releases:promote', 'v3');
  t.is(promote.code, 0, promote.stderr);
  t.regex(promote.stdout, /Promote v3: released v5/);
  t.is((await env('SPACES')).status, 404);

  const list = await releases();
  t.deepEqual(
    list.map((r) => [r.version, r.description, r.current]),
    [
      [5, 'Promote v3', true],
      [4, 'Rollback to v2', false],
      [3, 'Unset SPACES, UTF8', false],
      [2, `Set ${Object.keys(UNUSUAL).join(', ')}`, false],
      [1, list[4]!.description, false],
    ],
  );
  t.regex(list[4]!.description, /^Deploy [0-9a-f]{7}$/);

  const info = await cmd('releases:info', 'v3', '--json');
  const parsed = JSON.parse(info.stdout) as { configChanges: { removed: string[] } };
  t.deepEqual(parsed.configChanges.removed, ['SPACES', 'UTF8']);
  const text = await cmd('releases:info', 'v2');
  t.regex(text.stdout, /\+ DOLLAR=\$HOM\.\.\.\(/);
  t.notRegex(text.stdout, /\$\(id\)/, 'secret values are abbreviated');
});

test.serial('--no-deploy records a release that waits to be promoted', async (t) => {
  const r = await cmd('config:set', '--no-deploy', 'LATER=yes');
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /recorded v6; roll it out with: releases:promote v6/);
  t.is((await env('LATER')).status, 404);
  const [v6] = await releases();
  t.is(v6!.status, 'recorded');
  t.false(v6!.current);
  const promote = await cmd('releases:promote', 'v6');
  t.is(promote.code, 0, promote.stderr);
  t.deepEqual(await env('LATER'), { status: 200, body: 'yes' });
});

test.serial('two config:set at once over two connections both land', async (t) => {
  const before = (await releases()).length;
  const [a, b] = await Promise.all([cmd('config:set', 'CONC_A=1'), cmd('config:set', 'CONC_B=2')]);
  t.is(a.code, 0, a.stderr);
  t.is(b.code, 0, b.stderr);
  const list = await releases();
  t.is(list.length, before + 2);
  t.is(list[0]!.config['CONC_A'], '1');
  t.is(list[0]!.config['CONC_B'], '2');
  t.deepEqual(await env('CONC_A'), { status: 200, body: '1' });
  t.deepEqual(await env('CONC_B'), { status: 200, body: '2' });
});

test.serial('a release that crashes fails, keeps its number, and cannot be rolled back to', async (t) => {
  const before = await releases();
  const r = await cmd('config:set', 'CRASH=1');
  t.is(r.code, 1);
  t.regex(r.stderr, /failed its health check.*v\d+ keeps serving/);
  const list = await releases();
  t.is(list[0]!.status, 'failed');
  t.is(list[0]!.version, before[0]!.version + 1);
  t.true(list[1]!.current);
  t.deepEqual(await env('CONC_A'), { status: 200, body: '1' });
  const back = await cmd('releases:rollback', `v${list[0]!.version}`);
  t.is(back.code, 1);
  t.regex(back.stderr, /failed .*roll back to a release that worked/);
  // The failed change is not what the app has: `config` shows what serves and names what was not applied.
  t.is((await cmd('config:get', 'CRASH')).code, 1);
  const shown = await cmd('config');
  t.regex(shown.stdout, new RegExp(` !     not applied: v${list[0]!.version} \\(Set CRASH\\) failed: \\+CRASH`));
  t.notRegex(shown.stdout, /^CRASH:/m);
  // The next change starts from what serves, and the failed change is no longer the newest: said no more.
  const next = await cmd('config:set', 'AFTER=1');
  t.is(next.code, 0, next.stderr);
  t.notRegex((await cmd('config')).stdout, /not applied/);
});

test.serial('a rollback needs no build and a second push is kept in the history', async (t) => {
  await commitFile(dir, 'server.js', (await readFile(join(dir, 'server.js'), 'utf8')).replace('build-one', 'build-two'), 'two');
  const push = await rack.push(dir);
  t.is(push.code, 0, push.stderr);
  t.is((await rack.get(app)).body, 'build-two');
  const [latest] = await releases();
  const buildsBefore = (await cmd('builds', '--json')).stdout;
  const back = await cmd('releases:rollback');
  t.is(back.code, 0, back.stderr);
  t.is((await rack.get(app)).body, 'build-one');
  t.is((await cmd('builds', '--json')).stdout, buildsBefore, 'no new build');
  const forward = await cmd('releases:promote', `v${latest!.version}`);
  t.is(forward.code, 0, forward.stderr);
  t.is((await rack.get(app)).body, 'build-two');
  const logs = await cmd('builds:logs', `b${latest!.build}`);
  t.regex(logs.stdout, /Node\.js app detected/);
});

test.serial('kill -9 during a config change leaves a whole release or none, and the app serving', async (t) => {
  const before = await releases();
  const setting = cmd('config:set', 'KILLED=maybe');
  await new Promise((r) => setTimeout(r, 600)); // mid-rollout: the new container is starting
  await rack.stop('SIGKILL');
  await setting;
  await rack.start();
  const after = await releases();
  t.true(after.length === before.length || after.length === before.length + 1);
  if (after.length > before.length) {
    t.true(['succeeded', 'failed'].includes(after[0]!.status), `status ${after[0]!.status}`);
    t.is(after[0]!.config['KILLED'], 'maybe');
  }
  t.is((await rack.get(app)).status, 200);
  const current = after.find((r) => r.current)!;
  await rack.drained(app);
  const running = await exec('docker', ['ps', '-q', '--filter', `label=rack.app=${app}`]);
  t.is(running.stdout.trim().split('\n').filter(Boolean).length, 1, 'one web process, no leftovers');
  t.is((await env('KILLED')).status, current.config['KILLED'] === undefined ? 404 : 200);
});

test.serial('old images are pruned past RACK_KEEP_RELEASES, and a rollback to one says so', async (t) => {
  await rack.stop();
  await rack.start({ RACK_KEEP_RELEASES: '1' });
  const set = await cmd('config:set', 'PRUNE=now');
  t.is(set.code, 0, set.stderr);
  const [latest] = await releases();
  const first = (await releases()).find((r) => r.build === 1)!;
  t.not(latest!.build, 1);
  const images = await exec('docker', ['images', '--format', '{{.Tag}}', `rack/${app}`]);
  t.deepEqual(images.stdout.trim().split('\n').map((tag) => tag.split('-')[0]).sort(), [`b${latest!.build}`]);
  const back = await cmd('releases:rollback', `v${first.version}`);
  t.is(back.code, 1);
  t.regex(back.stderr, new RegExp(`the image of v${first.version} \\(rack/${app}:b1-[0-9a-f]+\\) was pruned; push the commit again to rebuild it`));
  const info = JSON.parse((await cmd('releases:info', `v${latest!.version}`, '--json')).stdout) as { formation: Record<string, number> };
  t.deepEqual(info.formation, { web: 1 });
});
