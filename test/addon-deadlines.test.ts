import test from 'ava';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exec, RackDaemon, type Result } from './support/rack-daemon.js';

// Add-on execs have a deadline: a pg_dump waiting on a table lock that a session holds open
// costs a backup its deadline, then its tools are killed inside the container, the add-on's lock
// is free and the schedule goes on to the other add-ons. Real rackd, real add-ons, the real ssh client.
const DEADLINE_S = 3;
let rack: RackDaemon;

test.before(async () => {
  // The first scheduled backups fall due a minute after the add-ons are made.
  rack = await RackDaemon.create({ RACK_BACKUP_TIMEOUT: String(DEADLINE_S), RACK_BACKUP_INTERVAL: '60' });
  const steps = [
    ['apps:create', 'shop'],
    // Named so that the stuck one comes first in the schedule's round.
    ['addons:create', 'postgres', '--as', 'aa-stuck', '-a', 'shop'],
    ['addons:create', 'redis', '--as', 'zz-fine', '--alias', 'CACHE', '-a', 'shop'],
  ];
  for (const args of steps) {
    const r = await rack.ssh(args);
    if (r.code !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}${r.stdout}`);
  }
});
let holder: ChildProcessWithoutNullStreams | undefined;
test.after.always(async () => {
  holder?.kill();
  await rack?.destroy();
});

const ok = (t: { is: (a: unknown, b: unknown, m?: string) => void }, r: Result) => t.is(r.code, 0, `${r.stderr}${r.stdout}`);
const backups = async (name: string) => JSON.parse((await rack.ssh(['addons:backups', name, '--json'])).stdout) as { id: string; trigger: string }[];

async function containerOf(name: string): Promise<string> {
  const id = (await readFile(join(rack.home, 'instance-id'), 'utf8')).trim();
  return `rack-${id}-addon-${name}`;
}

/** Runs a shell line in the add-on's container as its own user (who may signal its processes). */
async function inside(name: string, line: string): Promise<string> {
  const r = await exec('docker', ['exec', await containerOf(name), 'sh', '-c', line]);
  if (r.code !== 0) throw new Error(`${line}: ${r.stderr}`);
  return r.stdout;
}

/**
 * A psql session that takes an exclusive lock on a table and keeps its transaction open until
 * its stdin ends: pg_dump waits for that lock with no limit of its own.
 */
async function holdLock(name: string): Promise<ChildProcessWithoutNullStreams> {
  const psql = spawn('docker', ['exec', '-i', await containerOf(name), 'sh', '-c', 'exec psql -X -q -h /tmp -U postgres -d "$RACK_ADDON_DATABASE" -v ON_ERROR_STOP=1']);
  let out = '';
  psql.stdout.on('data', (c: Buffer) => (out += c.toString()));
  psql.stderr.on('data', (c: Buffer) => (out += c.toString()));
  psql.on('error', () => undefined);
  psql.stdin.on('error', () => undefined);
  psql.stdin.write("CREATE TABLE held (n int);\nBEGIN;\nLOCK TABLE held IN ACCESS EXCLUSIVE MODE;\nSELECT 'lock' || 'ed';\n");
  await until('the lock to be held', async () => {
    if (psql.exitCode !== null) throw new Error(`psql exited: ${out}`);
    return out.includes('locked');
  });
  return psql;
}

/** Command names of the processes running in the container. */
const processes = async (name: string) => (await inside(name, 'cat /proc/[0-9]*/comm 2>/dev/null; true')).split('\n').filter(Boolean);

async function until(what: string, check: () => Promise<boolean>, ms = 180_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

test.serial('a backup of a service that stopped answering is stopped at its deadline, its tools killed', async (t) => {
  holder = await holdLock('aa-stuck');
  const r = await rack.ssh(['addons:backup', 'aa-stuck']);
  t.not(r.code, 0);
  t.regex(r.stderr, new RegExp(`^ !     .*rack-addon-backup in aa-stuck did not finish within ${DEADLINE_S} s and was stopped`, 'm'));
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  // The script, its pipeline's filter and the timeout around them (comm is cut at 15 characters).
  await until('the backup tools to be gone from the container', async () => {
    const left = await processes('aa-stuck');
    return !['rack-addon-back', 'pg_dump', 'timeout'].some((c) => left.includes(c));
  });
  t.deepEqual(await backups('aa-stuck'), [], 'no backup recorded');
  // The add-on's lock is free: the next backup runs (and meets the same deadline) instead of queueing.
  const again = await rack.ssh(['addons:backup', 'aa-stuck']);
  t.regex(again.stderr, /did not finish within/);
});

test.serial('the schedule goes on to the other add-ons when one is stuck', async (t) => {
  await until('a scheduled backup of zz-fine', async () => (await backups('zz-fine')).some((b) => b.trigger === 'daily'));
  t.false((await backups('aa-stuck')).some((b) => b.trigger === 'daily'));
  // Its own turn came (or comes, when a round found it busy) and met the deadline.
  await until('the stuck add-on\'s scheduled backup to fail', async () => /"addon":"aa-stuck".*did not finish within|did not finish within.*"addon":"aa-stuck"/.test(rack.output));
  // The session lets go: the next backup is whole.
  holder!.stdin.end('ROLLBACK;\n');
  await new Promise((r) => holder!.once('close', r));
  ok(t, await rack.ssh(['addons:backup', 'aa-stuck']));
});

test.serial('copies taken before restores are pruned to the newest three', async (t) => {
  ok(t, await rack.ssh(['addons:backup', 'zz-fine']));
  const manual = (await backups('zz-fine')).find((b) => b.trigger === 'manual')!.id;
  for (let i = 0; i < 4; i++) ok(t, await rack.ssh(['addons:restore', 'zz-fine', manual]));
  const list = await backups('zz-fine');
  const safety = list.filter((b) => b.trigger === 'before-restore');
  t.is(safety.length, 3, JSON.stringify(list));
  // The newest three: numbers only grow, so the oldest copy is the one gone.
  const numbers = safety.map((b) => Number(b.id.slice(1)));
  t.deepEqual(numbers, [...numbers].sort((a, b) => b - a));
  t.true(list.some((b) => b.id === manual), 'a backup made by hand is never pruned');
  t.true(list.some((b) => b.trigger === 'daily'), 'nor a scheduled one, by this');
});
