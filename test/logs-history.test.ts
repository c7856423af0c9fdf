import test from 'ava';
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { api } from './support/api-client.js';
import { RackDaemon } from './support/rack-daemon.js';

// A real rackd and a real app printing known lines (`got PATH` for each request): its output is
// kept on disk across a redeploy and a stop and start of rackd on the same RACK_HOME.

let rack: RackDaemon;
const APP = 'keeper';

test.before(async () => {
  rack = await RackDaemon.create();
  const push = await rack.push(await rack.appRepo('node-ops', APP));
  if (push.code !== 0) throw new Error(push.stderr);
});
test.after.always(async () => {
  await rack?.destroy();
});

async function until(what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** ssh sends one command line: words with spaces go quoted, as a shell user would type them. */
const quoted = (args: readonly string[]) => args.map((a) => (/[\s$()'"]/.test(a) ? `'${a}'` : a));

async function logs(args: string[]): Promise<string> {
  const r = await rack.ssh(['logs', ...quoted(args), '-a', APP]);
  if (r.code !== 0) throw new Error(`logs ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Requests PATH and waits until the app's line for it is kept. */
async function mark(path: string): Promise<void> {
  await rack.get(APP, path);
  await until(`got ${path}`, async () => (await logs(['--grep', `got ${path}`])).includes(`got ${path}\n`));
}

const count = (text: string, needle: string) => text.split(needle).length - 1;

test.serial('lines from before a redeploy and before a rackd restart are found by logs --since, once each', async (t) => {
  // The router's per-request lines are made only while wanted: this app keeps them (across the restart too).
  const keep = await rack.ssh(['logs:router', 'on', '-a', APP]);
  t.is(keep.code, 0, keep.stderr);
  await mark('/before-redeploy');
  const redeploy = await rack.ssh(['config:set', 'MIGRATED=again', '-a', APP]);
  t.is(redeploy.code, 0, redeploy.stderr);
  await rack.drained(APP);
  await mark('/after-redeploy');

  await rack.stop();
  // Written while rackd is down: Docker holds it, and adoption reads it back.
  await rack.get(APP, '/while-down');
  await rack.start();
  await mark('/after-restart');
  await until('the line written while rackd was down', async () => (await logs(['--since', '1h'])).includes('got /while-down\n'));

  const all = await logs(['--since', '1h']);
  for (const path of ['/before-redeploy', '/after-redeploy', '/while-down', '/after-restart']) {
    t.is(count(all, `got ${path}\n`), 1, `${path} once (adoption reads the last lines again; they are not kept twice)`);
  }
  t.regex(all, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z app\[web\.[0-9a-f]+\]: got \/before-redeploy$/m);
  t.regex(all, /rack\[router\]: method=GET path="\/before-redeploy".* status=200/);
  t.regex(all, /rack\[release\]: migrating/, 'the release phase\'s output is kept too');
  const files = await readdir(join(rack.home, 'logs', 'apps', APP));
  t.true(files.length >= 1 && files.every((f) => /^\d{10}(\.\d+-\d+)?\.log$/.test(f)), files.join(' '));
});

test.serial('--grep, -p, --until, -n and --json filter the kept lines', async (t) => {
  const grep = await logs(['--since', '1h', '--grep', '/after-redeploy']);
  const lines = grep.trim().split('\n');
  t.is(lines.length, 2, grep);
  // In time order; which of the two is first depends on the app's, Docker's and the router's timing.
  t.is(lines.filter((l) => /app\[web\.[0-9a-f]+\]: got \/after-redeploy$/.test(l)).length, 1, grep);
  t.is(lines.filter((l) => /rack\[router\]: .*path="\/after-redeploy"/.test(l)).length, 1, grep);
  const times = lines.map((l) => l.slice(0, 24));
  t.deepEqual([...times].sort(), times, grep);
  t.is(await logs(['--grep', '/AFTER-REDEPLOY']), '', 'the text is matched as it is: case-sensitive');
  t.is(await logs(['--grep', '.*']), '', 'and never as a pattern');
  const web = await logs(['--since', '1h', '--grep', '/after-redeploy', '-p', 'web']);
  t.regex(web, /^\S+ app\[web\.[0-9a-f]+\]: got \/after-redeploy\n$/);
  const router = await logs(['--since', '1h', '-p', 'router']);
  t.true(router.trim().split('\n').every((l) => l.includes(' rack[router]: ')), router);

  const json = (await logs(['--since', '1h', '--grep', 'got /', '-p', 'web', '--json'])).trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>);
  // `got /` lines are the health checks'.
  t.deepEqual(json.map((l) => l['text']).filter((text) => text !== 'got /'), ['got /before-redeploy', 'got /after-redeploy', 'got /while-down', 'got /after-restart']);
  t.deepEqual(Object.keys(json[0]!), ['time', 'app', 'source', 'type', 'text']);
  t.is(json[0]!['app'], APP);

  const afterRedeploy = json.find((l) => l['text'] === 'got /after-redeploy')!;
  const until = await logs(['--since', '1h', '--until', afterRedeploy['time']!, '--grep', 'got /', '-p', 'web']);
  t.deepEqual(until.trim().split('\n').map((l) => l.split(': ')[1]).filter((text) => text !== 'got /'), ['got /before-redeploy', 'got /after-redeploy']);
  const last = await logs(['-n', '1', '--grep', 'got /after', '-p', 'web']);
  t.regex(last, /: got \/after-restart\n$/);
  t.is(last.split('\n').length, 2);
});

test.serial('the API takes since, until and grep as the command does', async (t) => {
  const token = await rack.createToken('reader');
  const res = await api(rack, 'GET', `/api/v1/apps/${APP}/logs?since=1h&grep=${encodeURIComponent('got /after-redeploy')}`, { token });
  t.is(res.status, 200, res.text);
  t.deepEqual((res.json as string[]).map((l) => l.split(': ')[1]), ['got /after-redeploy'], res.text);
  const bad = await api(rack, 'GET', `/api/v1/apps/${APP}/logs?since=yesterday`, { token });
  t.is(bad.status, 400);
  t.regex(bad.text, /--since takes a duration/);
});

test.serial('-f shows the matching history, then new matching lines, each once', async (t) => {
  const child = spawn('ssh', [...rack.sshArgs(), '--', 'logs', '-f', '--grep', 'follow-me', '--since', '1h', '-p', 'web', '-a', APP], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.on('error', () => undefined);
  t.teardown(() => child.kill());
  let seen = '';
  child.stdout.on('data', (c: Buffer) => (seen += c.toString()));
  await mark('/follow-me-1');
  await until('the first line followed', async () => seen.includes('got /follow-me-1\n'));
  await rack.get(APP, '/not-this-one');
  await rack.get(APP, '/follow-me-2');
  await until('the second line followed', async () => seen.includes('got /follow-me-2\n'));
  t.is(count(seen, 'got /follow-me-1\n'), 1);
  t.notRegex(seen, /not-this-one|rack\[router\]/);
});

test.serial('bad flags get one line and a non-zero exit', async (t) => {
  for (const [args, message] of [
    [['--since', 'yesterday'], /--since takes a duration \(30m, 2h, 1d\) or an ISO time/],
    [['--until', '$(id)'], /--until takes a duration/],
    [['--since', '1h', '--until', '2h'], /--since is after --until/],
    [['--grep', 'x'.repeat(201)], /--grep takes a text of 1 to 200 characters/],
    [['-f', '--until', '1h'], /does not go with --until/],
  ] as const) {
    const r = await rack.ssh(['logs', ...quoted(args), '-a', APP]);
    t.is(r.code, 1, args.join(' '));
    t.regex(r.stderr, message);
    t.is(r.stderr.trim().split('\n').length, 1);
  }
});

test.serial('apps:destroy removes the app\'s kept logs', async (t) => {
  const destroy = await rack.ssh(['apps:destroy', APP, '--confirm', APP]);
  t.is(destroy.code, 0, destroy.stderr);
  t.deepEqual(await readdir(join(rack.home, 'logs', 'apps')), []);
});
