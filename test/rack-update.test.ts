import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './support/free-port.js';
import { httpLoad } from './support/http-load.js';
import { exec, keypair, RackDaemon, ROOT } from './support/rack-daemon.js';
import { waitFor } from './support/router-processes.js';

const run = promisify(execFile);

// rack updating and rolling back itself, as an admin would: rackd started by bin/rackd, a source
// repository with newer commits (a clone of this checkout), the real git, npm, tsc and Docker, and
// an app under load all along. One rackd for the file: each test goes on from where the last left.

interface RackJson {
  pid: number;
  version: string;
  commit: string;
  router: { pid: number; version: string | null } | null;
}

interface LedgerEntry {
  id: number;
  schema: number;
  kind: string;
  commit: string;
  status: string;
  failedStep: string | null;
  error: string | null;
  phases?: { name: string; ms: number }[];
}

let daemon: RackDaemon;
let source: string;
let installed: string;
const commits = { next: '', 'no-build': '', 'no-start': '', 'old-schema': '' };

const git = (args: string[], cwd = source) => run('git', args, { cwd }).then((r) => r.stdout.trim());

async function commitOn(branch: string, from: string, change: (dir: string) => Promise<void>, message: string): Promise<string> {
  await git(['checkout', '-q', '-B', branch, from]);
  await change(source);
  await git(['add', '-A']);
  await git(['-c', 'user.email=dev@example.com', '-c', 'user.name=Dev', 'commit', '-qm', message]);
  return git(['rev-parse', 'HEAD']);
}

async function rackJson(): Promise<RackJson> {
  const r = await daemon.ssh(['rack', '--json']);
  if (r.code !== 0) throw new Error(`rack --json: ${r.stderr}`);
  return JSON.parse(r.stdout) as RackJson;
}

async function ledger(): Promise<LedgerEntry[]> {
  return JSON.parse((await daemon.ssh(['rack:releases', '--json'])).stdout) as LedgerEntry[];
}

/** The app containers of this rack, by ID: the same set before and after means none was replaced. */
async function appContainers(): Promise<string[]> {
  const id = (await readFile(join(daemon.home, 'instance-id'), 'utf8')).trim();
  const { stdout } = await exec('docker', ['ps', '-q', '--no-trunc', '--filter', `label=rack.instance=${id}`, '--filter', 'label=rack.app=hello']);
  return stdout.split('\n').filter(Boolean).sort();
}

test.before(async () => {
  installed = await git(['rev-parse', 'HEAD'], ROOT);
  source = join(await mkdtemp(join(tmpdir(), 'rack-source-')), 'rack');
  await run('git', ['clone', '-q', ROOT, source]);
  commits['next'] = await commitOn('next', installed, async (dir) => {
    const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { version: string };
    await writeFile(join(dir, 'package.json'), `${JSON.stringify({ ...pkg, version: `${pkg.version}-next` }, null, 2)}\n`);
  }, 'the next version');
  commits['no-build'] = await commitOn('no-build', installed, (dir) => writeFile(join(dir, 'daemon', 'broken.ts'), "export const broken: number = 'not a number';\n"), 'a version that does not build');
  commits['no-start'] = await commitOn('no-start', installed, async (dir) => {
    const main = join(dir, 'daemon', 'main.ts');
    const text = await readFile(main, 'utf8');
    await writeFile(main, text.replace('async function main(): Promise<void> {', "async function main(): Promise<void> {\n  if (process.env['RACK_HOME'] !== undefined) throw new Error('this version does not start (a test)');"));
  }, 'a version whose rackd does not start');
  commits['old-schema'] = await commitOn('old-schema', installed, async (dir) => {
    const file = join(dir, 'daemon', 'versions', 'migrations.ts');
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace(/export const MIGRATIONS: Migration\[\] = \[[\s\S]*\];\s*$/, 'export const MIGRATIONS: Migration[] = [];\n'));
  }, 'a version from before the store had its first migration');
  await git(['checkout', '-q', 'next']);
  // A fixed ssh port: the rackd after a switch listens where the one before did.
  daemon = await RackDaemon.create({ RACK_SSH_PORT: String(await freePort()), RACK_HTTPS_PORT: 'off' }, { launcher: true });
  const app = await daemon.appRepo('node-hello', 'hello');
  const pushed = await daemon.push(app);
  if (pushed.code !== 0) throw new Error(`push failed:\n${pushed.stderr}`);
});

test.after.always(async () => {
  await daemon?.destroy();
  if (source) await rm(join(source, '..'), { recursive: true, force: true });
});

test.serial('under load, rack:update to a new commit and rack:rollback fail no request, keep the app containers and replace the router', async (t) => {
  const before = await rackJson();
  t.is(before.commit, installed);
  const containers = await appContainers();
  t.true(containers.length > 0);
  const load = httpLoad(daemon.httpPort, 'hello.localhost', 4, 1);
  t.teardown(() => load.stop());
  await waitFor('traffic through the router', () => load.ok() > 20);

  const update = await daemon.ssh(['rack:update', 'next', '--from', source]);
  t.is(update.code, 0, update.stderr);
  for (const step of ['Fetching next', 'Installing dependencies', 'Building', 'Running its start-up checks']) t.true(update.stdout.includes(`-----> ${step}`), step);
  t.regex(update.stdout, /is serving \(rackd pid \d+, started in [\d.]+s/);
  t.regex(update.stdout, /steps: fetch [\d.]+s, checkout [\d.]+s, dependencies [\d.]+s, build [\d.]+s, check [\d.]+s, switch [\d.]+s/);
  const updated = await rackJson();
  t.is(updated.commit, commits['next']);
  t.regex(updated.version, /-next$/);
  t.not(updated.router?.pid, before.router?.pid, 'the router process was replaced');
  t.is(updated.router?.version, updated.version);
  const served = load.ok();
  await waitFor('traffic after the update', () => load.ok() > served + 20);

  const rollback = await daemon.ssh(['rack:rollback']);
  t.is(rollback.code, 0, rollback.stderr);
  const back = await rackJson();
  t.is(back.commit, installed);
  t.not(back.router?.pid, updated.router?.pid, 'the router process was replaced again');
  const servedAfter = load.ok();
  await waitFor('traffic after the rollback', () => load.ok() > servedAfter + 20);

  const { ok, failed } = await load.stop();
  t.deepEqual(failed, []);
  t.true(ok > 60);
  t.deepEqual(await appContainers(), containers, 'the same app containers served throughout');
  const [r3, r2, r1] = await ledger();
  t.like(r1, { kind: 'install', commit: installed, status: 'succeeded' });
  t.like(r2, { kind: 'update', commit: commits['next'], status: 'succeeded' });
  t.like(r3, { kind: 'rollback', commit: installed, status: 'succeeded' });
  t.deepEqual(r2!.phases!.map((p) => p.name), ['fetch', 'checkout', 'dependencies', 'build', 'check', 'start']);
  t.deepEqual(r3!.phases!.map((p) => p.name), ['check', 'start']);
});

test.serial('an update whose build fails leaves the old rack serving, recorded as failed at build', async (t) => {
  const r = await daemon.ssh(['rack:update', 'no-build', '--from', source]);
  t.not(r.code, 0);
  t.regex(r.stderr, /failed at build: npm run build failed with status \d+: .*broken\.ts.*; rack .* is still serving/);
  t.is((await rackJson()).commit, installed);
  t.like((await ledger())[0], { kind: 'update', commit: commits['no-build'], status: 'failed', failedStep: 'build' });
  t.is((await daemon.get('hello')).status, 200);
});

test.serial('an update whose new rackd does not start: the old one starts again and serves, recorded as failed at start', async (t) => {
  const before = await rackJson();
  const load = httpLoad(daemon.httpPort, 'hello.localhost', 2, 1);
  t.teardown(() => load.stop());
  await waitFor('traffic through the router', () => load.ok() > 10);
  const r = await daemon.ssh(['rack:update', 'no-start', '--from', source]);
  t.not(r.code, 0);
  t.regex(r.stderr, /failed at start: the new rackd exited \(status 1\) before it was ready: rackd: .*this version does not start \(a test\); rack .* serves again/);
  const after = await rackJson();
  t.is(after.commit, installed);
  const served = load.ok();
  await waitFor('traffic after the failed update', () => load.ok() > served + 10);
  t.deepEqual((await load.stop()).failed, []);
  const [entry] = await ledger();
  t.like(entry, { kind: 'update', commit: commits['no-start'], status: 'failed', failedStep: 'start' });
  t.regex(entry!.error ?? '', /does not start/);
  t.is(after.router?.pid, before.router?.pid, 'the new rackd never got as far as the router');
  // The launcher starts the same version again after a restart: `current` was not moved.
  t.is(resolve(await readlink(join(daemon.home, 'current'))), resolve(ROOT));
});

test.serial('rack:update --check says whether the source has a newer rack, and changes nothing', async (t) => {
  const r = await daemon.ssh(['rack:update', 'next', '--from', source, '--check', '--json']);
  t.is(r.code, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { upToDate: false, available: { commit: commits['next'] }, running: { commit: installed }, ahead: 1 });
  const same = await daemon.ssh(['rack:update', installed, '--from', source, '--check']);
  t.regex(same.stdout, /is up to date with commit/);
  t.is((await rackJson()).commit, installed);
});

test.serial('rack:update and rack:rollback refuse bad input in one line, and are for admins only', async (t) => {
  for (const [args, expected] of [
    [['rack:update', '--from=-uhack'], /not a repository URL/],
    [['rack:update', '--upload-pack=touch', '--from', source], /Unknown option|unknown option/i],
    [['rack:update', '../../etc', '--from', source], /not a tag, branch or commit/],
    [['rack:update', 'no-such-branch', '--from', source], /has no tag, branch or commit no-such-branch/],
    [['rack:rollback', 'r99'], /no rack release r99/],
    [['rack:rollback', 'x1'], /expected a rack release like r3/],
  ] as [string[], RegExp][]) {
    const r = await daemon.ssh(args);
    t.not(r.code, 0, args.join(' '));
    t.regex(r.stderr.trim(), expected, args.join(' '));
    t.is(r.stderr.trim().split('\n').length, 1, args.join(' '));
  }
  const dev = await keypair(daemon.work, 'dev');
  t.is((await daemon.ssh(['keys:add', 'dev', '--app', 'hello'], { input: await readFile(dev.pub, 'utf8') })).code, 0);
  for (const args of [['rack:update', '--from', source], ['rack:rollback'], ['rack:releases']]) {
    const r = await daemon.ssh(args, { key: dev.priv });
    t.not(r.code, 0);
    t.regex(r.stderr, /admin/);
  }
  t.is((await rackJson()).commit, installed);
});

test.serial('an update to a rack that reads an older schema takes the store down first; the way back migrates it up again', async (t) => {
  const down = await daemon.ssh(['rack:update', 'old-schema', '--from', source]);
  t.is(down.code, 0, down.stderr);
  t.regex(down.stdout, /the store goes down from schema v2 to v1 \(this rack's down steps\) before it starts/);
  const old = JSON.parse((await daemon.ssh(['rack', '--json'])).stdout) as RackJson & { schema: number; schemaLatest: number };
  t.like(old, { commit: commits['old-schema'], schema: 1, schemaLatest: 1 });
  t.is((await daemon.get('hello')).status, 200);
  const up = await daemon.ssh(['rack:rollback']);
  t.is(up.code, 0, up.stderr);
  t.regex(up.stdout, /it migrates the store from schema v1 to v2 as it starts/);
  t.like(JSON.parse((await daemon.ssh(['rack', '--json'])).stdout), { commit: installed, schema: 2 });
  const [back, went] = await ledger();
  t.like(went, { commit: commits['old-schema'], status: 'succeeded', schema: 1 } as Partial<LedgerEntry>);
  t.like(back, { commit: installed, kind: 'rollback', status: 'succeeded', schema: 2 } as Partial<LedgerEntry>);
});

test.serial('when rackd and the router both die, the launcher brings the router back from its table, then rackd', async (t) => {
  // The processes that serve now (a rackd switched from may still be telling its client goodbye).
  const running = await rackJson();
  const routerPid = running.router!.pid;
  // rackd is stopped first (a rackd that saw its router die would start one itself) and killed
  // last, so the router is already dying, not alive, when the launcher sees rackd's exit.
  process.kill(running.pid, 'SIGSTOP');
  process.kill(routerPid, 'SIGKILL');
  process.kill(running.pid, 'SIGKILL');
  const killedAt = Date.now();
  await waitFor('the app to answer again', async () => (await daemon.get('hello').catch(() => ({ status: 0 }))).status === 200, 120_000).catch(async (err: Error) => {
    const tail = async (file: string) => (await readFile(join(daemon.home, 'logs', file), 'utf8').catch(() => '')).split('\n').slice(-8).join('\n');
    throw new Error(`${err.message}\nlauncher.log:\n${await tail('launcher.log')}\nrouter.log:\n${await tail('router.log')}`);
  });
  t.log(`the app answered again ${Date.now() - killedAt} ms after rackd and the router were killed`);
  t.regex(await readFile(join(daemon.home, 'logs', 'launcher.log'), 'utf8'), /the router was not running; started it/);
  await waitFor('rackd to be back', async () => (await daemon.ssh(['rack', '--json'])).code === 0, 120_000);
  const now = await rackJson();
  t.not(now.router?.pid, routerPid);
  t.is(now.commit, installed);
});
