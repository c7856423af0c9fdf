import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { cp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { commitFile, exec, FIXTURES, keypair, RackDaemon } from './support/rack-daemon.js';

// Disk limits and quotas: what one app's key can make rack spend of the machine. The rack runs
// with a small default disk limit and process quota, so that going past them is quick.

let rack: RackDaemon;
let appKey: string;
test.before(async () => {
  rack = await RackDaemon.create({ RACK_DISK_LIMIT: '512m', RACK_MAX_PROCESSES: '3' });
  for (const app of ['filler', 'bystander']) {
    const push = await rack.push(await rack.appRepo('tenant', app));
    if (push.code !== 0) throw new Error(push.stderr);
    const set = await rack.ssh(['config:set', `NAME=${app}`, '-a', app]);
    if (set.code !== 0) throw new Error(set.stderr);
    await rack.drained(app);
  }
  const key = await keypair(rack.work, 'filler-key');
  const add = await rack.ssh(['keys:add', 'filler-dev', '--app', 'filler'], { input: await readFile(key.pub, 'utf8') });
  if (add.code !== 0) throw new Error(add.stderr);
  appKey = key.priv;
});
test.after.always(async () => {
  await rack?.destroy();
});

const run = (app: string, command: string, key?: string) => rack.ssh(['run', '-a', app, command], key ? { key } : {});

async function bothServe(t: { deepEqual: (a: unknown, b: unknown, m?: string) => void }): Promise<void> {
  t.deepEqual(await rack.get('filler'), { status: 200, body: 'tenant filler\n' }, 'the app keeps serving');
  t.deepEqual(await rack.get('bystander'), { status: 200, body: 'tenant bystander\n' }, 'another app keeps serving');
}

const webContainers = async (app: string) =>
  (await exec('docker', ['ps', '-q', '--filter', `label=rack.app=${app}`, '--filter', 'label=rack.role=process'])).stdout.split('\n').filter(Boolean);

test.serial('a one-off process has RACK_DISK_LIMIT of writable space: past it, writes fail with ENOSPC', async (t) => {
  const r = await run('filler', 'df -m / | tail -n 1; dd if=/dev/zero of=/tmp/fill bs=1M count=700; echo "dd exited $?"');
  // df inside sees the limit, not the host's disk.
  const total = Number(/^\S+\s+(\d+)/m.exec(r.stdout)?.[1] ?? 'NaN');
  t.true(total > 400 && total <= 512, `${r.stdout}\n${r.stderr}`);
  t.regex(r.stderr, /No space left on device/);
  t.regex(r.stdout, /dd exited 1/);
  await bothServe(t);
});

test.serial('ps:limit TYPE disk= sets a type\'s writable space: its processes and one-off runs stop at it, and ps shows it', async (t) => {
  const set = await rack.ssh(['ps:limit', 'web', 'disk=64m', '-a', 'filler']);
  t.is(set.code, 0, set.stderr);
  t.regex(set.stdout, /web processes of filler run with memory=512m cpu=1 pids=256 disk=64m/);
  await rack.drained('filler');
  const ps = await rack.ssh(['ps', '-a', 'filler']);
  t.regex(ps.stdout, /disk=64m/);
  const oneOff = await run('filler', 'dd if=/dev/zero of=/app/fill bs=1M count=200; echo "dd exited $?"');
  t.regex(oneOff.stderr, /No space left on device/);
  const written = Number(/^(\d+) bytes/m.exec(oneOff.stderr)?.[1] ?? 'NaN');
  t.true(written < 64 * 1024 * 1024 && written > 32 * 1024 * 1024, oneOff.stderr);
  // The web process itself, written into as its own user.
  const [web] = await webContainers('filler');
  const inWeb = await exec('docker', ['exec', '-u', '1000:1000', web!, 'dd', 'if=/dev/zero', 'of=/tmp/fill', 'bs=1M', 'count=200']);
  t.not(inWeb.code, 0);
  t.regex(inWeb.stderr, /No space left on device/);
  // It runs on with its disk full, and ps says so.
  t.regex((await rack.ssh(['ps', '-a', 'filler'])).stdout, /web\.\w+\s+v\d+\s+up, disk full/);
  await bothServe(t);
  // The bystander's processes keep the default.
  const other = await run('bystander', 'df -m / | tail -n 1');
  t.true(Number(/^\S+\s+(\d+)/m.exec(other.stdout)?.[1] ?? 'NaN') > 400, other.stdout);
});

test.serial('a release phase and a build (its layer and its cache) stop at the disk limit and fail with ENOSPC; the app keeps serving', async (t) => {
  const dir = join(rack.work, 'filler');
  await commitFile(dir, 'Procfile', 'web: node server.js\nrelease: dd if=/dev/zero of=/tmp/fill bs=1M count=200\n', 'a greedy release phase');
  const release = await rack.push(dir);
  t.not(release.code, 0);
  t.regex(release.stderr, /No space left on device/);
  await bothServe(t);

  const pack = join(rack.home, 'buildpacks', 'filler');
  await cp(join(FIXTURES, 'filler-buildpack'), pack, { recursive: true });
  const app = await rack.appRepo('procfile-app', 'greedy');
  await commitFile(app, '.buildpacks', `${pack}\n`, 'a greedy build');
  const build = await rack.push(app);
  t.not(build.code, 0);
  t.regex(build.stderr, /No space left on device/);
  // The build cache (/cache, kept between builds on the host) is under the limit too.
  await commitFile(app, 'FILL_TO', 'cache\n', 'a build filling its cache');
  const cache = await rack.push(app);
  t.not(cache.code, 0);
  t.regex(cache.stderr, /No space left on device/);
  const kept = await exec('du', ['-sm', '--apparent-size', join(rack.home, 'cache', 'greedy')]);
  t.true(Number(kept.stdout.split('\t')[0]) <= 512, kept.stdout);
  const clear = await rack.ssh(['builds:cache:clear', '-a', 'greedy']);
  t.is(clear.code, 0, clear.stderr);
  await bothServe(t);
});

test.serial('an app key cannot raise limits past the app\'s ceilings; an admin sets them with apps:limits', async (t) => {
  for (const words of [['memory=16g'], ['memory=4g'], ['cpu=shared'], ['pids=4096'], ['disk=8g']]) {
    const r = await rack.ssh(['ps:limit', 'web', ...words, '-a', 'filler'], { key: appKey });
    t.is(r.code, 1, words.join(' '));
    t.regex(r.stderr, /over .*this app's ceiling per process/);
    t.is(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr);
  }
  const shown = await rack.ssh(['apps:limits', '-a', 'filler']);
  t.is(shown.code, 0, shown.stderr);
  t.regex(shown.stdout, /memory=2g cpu=2 pids=1024 disk=4g/);
  const byAppKey = await rack.ssh(['apps:limits', 'memory=8g', '-a', 'filler'], { key: appKey });
  t.is(byAppKey.code, 1);
  t.regex(byAppKey.stderr, /only admin keys may/);
  const raise = await rack.ssh(['apps:limits', 'memory=1g', 'disk=128m', '-a', 'filler']);
  t.is(raise.code, 0, raise.stderr);
  t.regex(raise.stdout, /memory=1g cpu=2 pids=1024 disk=128m/);
  const within = await rack.ssh(['ps:limit', 'web', 'memory=1g', 'disk=128m', '-a', 'filler'], { key: appKey });
  t.is(within.code, 0, within.stderr);
  const past = await rack.ssh(['ps:limit', 'web', 'disk=256m', '-a', 'filler'], { key: appKey });
  t.regex(past.stderr, /disk=256m is over disk=128m/);
  // Admins may set anything within what rack can run.
  const admin = await rack.ssh(['ps:limit', 'web', 'memory=3g', '-a', 'filler']);
  t.is(admin.code, 0, admin.stderr);
  await rack.drained('filler');
  await bothServe(t);
});

test.serial('one-off runs count toward RACK_MAX_PROCESSES with the formation', async (t) => {
  // web=1 plus two one-off runs left open make 3, the most this rack lets an app run.
  const open: ChildProcess[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const child = spawn('ssh', [...rack.sshArgs(appKey), '--', 'run', '-a', 'filler', 'cat'], { stdio: ['pipe', 'ignore', 'ignore'] });
      child.on('error', () => undefined);
      open.push(child);
    }
    for (let i = 0; i < 200; i++) {
      const runs = await exec('docker', ['ps', '-q', '--filter', 'label=rack.app=filler', '--filter', 'label=rack.role=run']);
      if (runs.stdout.split('\n').filter(Boolean).length === 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const third = await run('filler', 'true', appKey);
    t.is(third.code, 1);
    t.regex(third.stderr, /filler runs 1 processes and 2 one-off ones; an app may run at most 3 in all/);
    t.is(third.stderr.split('\n').filter(Boolean).length, 1, third.stderr);
    const scale = await rack.ssh(['ps:scale', 'web=2', '-a', 'filler']);
    t.is(scale.code, 1);
    t.regex(scale.stderr, /besides 2 one-off ones running/);
    // The other app's quota is its own.
    const other = await run('bystander', 'echo ok');
    t.is(other.stdout.trim(), 'ok', other.stderr);
  } finally {
    for (const child of open) child.stdin?.end();
    await Promise.all(open.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
  }
  // The count goes down as runs end.
  const again = await run('filler', 'echo again', appKey);
  t.is(again.stdout.trim(), 'again', again.stderr);
  await bothServe(t);
});
