import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { commitFile, exec, headOf, RackDaemon, ROOT } from './support/rack-daemon.js';
import { fillDisk, smallDisk } from './support/small-disk.js';

// A real rackd (Docker, the stack images, ssh and git) whose RACK_HOME is a small tmpfs that fills
// up, the way the lost changes of issue 26 were seen: once a store write failed, rackd confirmed
// every later change, and a restart lost them all.

const MESSAGE = ' !     rack cannot save changes: its store failed to write (ENOSPC: no space left on device); free space and restart rackd';

/** A config value that needs new pages of the store's log (and that an ssh exec request still carries). */
const BIG = `BIG=${'x'.repeat(20_000)}`;

test('once a store write failed on a full disk, rackd refuses every change until restarted, and loses nothing it confirmed', async (t) => {
  const disk = await smallDisk(t, '64m');
  const rack = await RackDaemon.create({}, { home: join(disk, 'home') });
  t.teardown(() => rack.destroy());
  const dir = await rack.appRepo('procfile-app', 'before');
  const first = await rack.push(dir);
  t.is(first.code, 0, first.stderr);

  const filler = await fillDisk(disk);
  const full = await rack.ssh(['config:set', BIG, '--no-deploy', '-a', 'before']);
  await rm(filler);

  // Space is back. Before the fix every one of these was confirmed and gone after the restart.
  const created = await rack.ssh(['apps:create', 'after']);
  const set = await rack.ssh(['config:set', 'A=1', '--no-deploy', '-a', 'before']);
  const token = await rack.ssh(['tokens:create', 'ci']);
  await commitFile(dir, 'CHANGE', 'after the disk was full\n', 'after');
  const push = await rack.push(dir);
  const scale = await rack.ssh(['ps:scale', 'web=2', '-a', 'before']);
  const apps = await rack.ssh(['apps']);
  const ps = await rack.ssh(['ps', '--json', '-a', 'before']);
  const operatorLog = rack.output.split('\n').filter((l) => /store_failed|cannot save/.test(l));

  await rack.stop();
  await rack.start();
  if (created.code === 0) t.regex((await rack.ssh(['apps'])).stdout, /\bafter\b/, 'apps:create after was confirmed, and is lost');
  if (set.code === 0) t.is((await rack.ssh(['config:get', 'A', '-a', 'before'])).stdout, '1', 'config:set A=1 was confirmed, and is lost');
  if (token.code === 0) t.regex((await rack.ssh(['tokens'])).stdout, /\bci\b/, 'tokens:create ci was confirmed, and is lost');
  // The restarted rackd has a new ssh port: the working copy's remote is out of date.
  const head = await exec('git', ['ls-remote', rack.remote('before'), 'refs/heads/main'], { env: rack.gitEnv() });
  if (push.code === 0) t.regex((await rack.ssh(['releases', '-a', 'before'])).stdout, /v2\b/, 'the push was released, and is lost');
  else t.is(head.stdout.split('\t')[0], await headOf(dir, 'HEAD~1'), `a refused push does not move the branch ${head.stderr}`);

  // What each was told: one line, and a non-zero exit.
  t.is(full.stderr, `${MESSAGE}\n`, 'the change the disk could not take');
  t.not(full.code, 0);
  for (const [name, r] of Object.entries({ created, set, token, scale })) {
    t.is(r.code, 1, `${name}: ${r.stdout}`);
    t.is(r.stderr, `${MESSAGE}\n`, name);
  }
  t.not(push.code, 0, push.stderr);
  t.true(push.stderr.includes(MESSAGE), push.stderr);
  t.is(operatorLog.length, 1, `the operator log says it once:\n${operatorLog.join('\n')}`);
  // Reads went on.
  t.is(apps.code, 0, apps.stderr);
  t.regex(apps.stdout, /before/);
  t.is((JSON.parse(ps.stdout) as unknown[]).length, 1, 'a refused scale started nothing');
  // The restarted rackd takes changes again.
  t.is((await rack.ssh(['apps:create', 'later'])).code, 0);
});

test('rackd on a full disk refuses to start, naming the cause in one line', async (t) => {
  const disk = await smallDisk(t, '64m');
  const home = join(disk, 'home');
  const rack = await RackDaemon.create({}, { home });
  t.teardown(() => rack.destroy());
  t.is((await rack.ssh(['apps:create', 'shop'])).code, 0);
  await rack.stop();
  await fillDisk(disk);

  const child = spawn(process.execPath, [join(ROOT, 'dist', 'daemon', 'main.js')], {
    env: { ...process.env, RACK_HOME: home, RACK_SSH_PORT: '0', RACK_HTTP_PORT: '0', RACK_HTTPS_PORT: '0', RACK_BIND: '127.0.0.1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  t.is(code, 1);
  t.is(stderr, `rackd: cannot open the store at ${join(home, 'db')}: no space left on device\n`);
});
