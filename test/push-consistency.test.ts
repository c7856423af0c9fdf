import test from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatSize, parseSize } from '../daemon/config.js';
import { commitFile, exec, headOf, RackDaemon, type Result } from './support/rack-daemon.js';

// What serves is what the branch says: one rackd for the whole file, with a small push limit.
const ENV = { RACK_MAX_PUSH: '1m' };
let rack: RackDaemon;
test.before(async () => {
  rack = await RackDaemon.create();
  await rack.stop();
  await rack.start(ENV);
});
test.after.always(async () => {
  await rack?.destroy();
});

const server = (label: string) => `require('http').createServer((req, res) => res.end('${label}\\n')).listen(process.env.PORT);\n`;

/** What the branch on rack points at, as `git ls-remote` sees it ('' when it does not exist). */
async function remoteHead(dir: string, branch = 'main'): Promise<string> {
  const out = await exec('git', ['ls-remote', 'rack', `refs/heads/${branch}`], { cwd: dir, env: rack.gitEnv() });
  return out.stdout.split(/\s/)[0] ?? '';
}

async function releaseDescriptions(app: string): Promise<string[]> {
  const out = await rack.ssh(['releases', '-a', app, '--json']);
  return (JSON.parse(out.stdout) as { description: string }[]).map((r) => r.description);
}

/** Times rackd logged the end of a push to the app (after its branch check). */
function pushesFinished(app: string): number {
  return rack.output.split('\n').filter((l) => l.includes('"push finished"') && l.includes(`"app":"${app}"`)).length;
}

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** `git push` whose stderr is read as it streams; `killWhen` sees it and may end the client (git and ssh). */
function pushStreaming(dir: string, refspec: string, killWhen: (stderr: string) => boolean): Promise<Result & { killed: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', ['push', 'rack', refspec], { cwd: dir, env: rack.gitEnv(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let killed = false;
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      if (!killed && killWhen(stderr)) {
        killed = true;
        process.kill(-child.pid!, 'SIGKILL'); // its process group: git and the ssh it runs
      }
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr, killed }));
  });
}

const labelOf = new Map<string, string>();
async function commitServer(dir: string, label: string): Promise<string> {
  await commitFile(dir, 'server.js', server(label), label);
  const commit = await headOf(dir);
  labelOf.set(commit, label);
  return commit;
}

/** The invariant, checked from the outside: the branch head is what rack records and what answers. */
async function assertConsistent(t: import('ava').ExecutionContext, app: string, dir: string): Promise<string> {
  const head = await remoteHead(dir);
  t.is(await rack.servingCommit(app), head, 'the serving release is the branch head');
  t.deepEqual(await rack.get(app), { status: 200, body: `${labelOf.get(head)}\n` });
  return head;
}

test.serial('three concurrent pushes from one parent: only what was accepted is released, and the branch head serves', async (t) => {
  const app = 'race';
  const base = await rack.appRepo('node-hello', app);
  await commitServer(base, 'parent');
  const first = await rack.push(base);
  t.is(first.code, 0, first.stderr);
  const before = (await releaseDescriptions(app)).length;

  const dirs = await Promise.all(
    ['a', 'b', 'c'].map(async (name) => {
      const dir = join(rack.work, `race-${name}`);
      await cp(base, dir, { recursive: true });
      return { dir, commit: await commitServer(dir, `race ${name}`) };
    }),
  );
  const results = await Promise.all(dirs.map(({ dir }) => rack.push(dir)));
  const accepted = dirs.filter((_, i) => results[i]!.code === 0).map((d) => d.commit);
  t.true(accepted.length >= 1, results.map((r) => r.stderr).join('\n----\n'));
  t.true(results.some((r) => /Waiting for another push to race to finish/.test(r.stderr)), 'a later push was told it waits');
  for (const r of results.filter((x) => x.code !== 0)) t.notRegex(r.stderr, /Released v/, 'a refused push released nothing');

  // Exactly the accepted pushes were released, and no rejected one serves.
  const released = (await releaseDescriptions(app)).slice(0, -before).map((d) => d.replace(/^Deploy /, ''));
  t.deepEqual(released.sort(), accepted.map((c) => c.slice(0, 7)).sort());
  const head = await assertConsistent(t, app, base);
  t.true(accepted.includes(head));
});

test.serial('five concurrent pushes to five apps all deploy', async (t) => {
  const apps = ['five-1', 'five-2', 'five-3', 'five-4', 'five-5'];
  const dirs = await Promise.all(
    apps.map(async (app) => {
      const dir = await rack.appRepo('node-hello', app);
      await commitServer(dir, `hello ${app}`);
      return dir;
    }),
  );
  const results = await Promise.all(dirs.map((dir) => rack.push(dir)));
  for (const [i, r] of results.entries()) t.is(r.code, 0, `${apps[i]}: ${r.stderr}`);
  for (const [i, app] of apps.entries()) await assertConsistent(t, app, dirs[i]!);
});

test.serial('a client killed during the rollout: git finishes the push, the branch head serves, the next push works', async (t) => {
  const app = 'hangup';
  const dir = await rack.appRepo('node-hello', app);
  await commitServer(dir, 'before');
  t.is((await rack.push(dir)).code, 0);

  await commitServer(dir, 'cut off');
  const finished = pushesFinished(app);
  const cut = await pushStreaming(dir, 'main', (stderr) => /Starting web=1/.test(stderr));
  t.true(cut.killed, cut.stderr);
  await until('rackd to finish the cut-off push', () => pushesFinished(app) > finished);
  await assertConsistent(t, app, dir);

  const next = await commitServer(dir, 'after');
  const again = await rack.push(dir);
  t.is(again.code, 0, again.stderr);
  t.is(await assertConsistent(t, app, dir), next);
});

/** Pushes a new commit and SIGKILLs rackd as soon as the pusher sees the router switch; restarts it with `between` done. */
async function pushAndKillRackd(app: string, dir: string, label: string, between: () => Promise<void>): Promise<string> {
  const commit = await commitServer(dir, label);
  const push = await pushStreaming(dir, 'main', (stderr) => {
    if (/router switched/.test(stderr)) rack.child?.kill('SIGKILL');
    return false; // the client sees rackd go away on its own
  });
  if (push.code === 0) throw new Error(`the push outlived rackd:\n${push.stderr}`);
  const killed = rack.child!;
  if (killed.exitCode === null && killed.signalCode === null) await new Promise((r) => killed.once('exit', r));
  await between();
  await rack.start(ENV);
  await exec('git', ['remote', 'set-url', 'rack', rack.remote(app)], { cwd: dir }); // a new ssh port
  return commit;
}

function inFlightOutcome(app: string): string {
  const line = rack.output.split('\n').reverse().find((l) => l.includes(`"app":"${app}"`) && /in flight (checked|could not)/.test(l));
  return line ? ((JSON.parse(line) as { outcome?: string; err?: string }).outcome ?? 'failed') : 'none';
}

test.serial('rackd killed right after the router switched: after a restart the branch and what serves agree', async (t) => {
  const app = 'crash';
  const dir = await rack.appRepo('node-hello', app);
  await commitServer(dir, 'stable');
  t.is((await rack.push(dir)).code, 0);

  await pushAndKillRackd(app, dir, 'in flight', async () => {});
  t.log('outcome:', inFlightOutcome(app));
  await assertConsistent(t, app, dir);

  const next = await commitServer(dir, 'after restart');
  const again = await rack.push(dir);
  t.is(again.code, 0, again.stderr);
  t.is(await assertConsistent(t, app, dir), next);
});

test.serial('rackd killed after the switch and the pushed commit gone from the repo: the release is rolled back', async (t) => {
  const app = 'crash-gc';
  const dir = await rack.appRepo('node-hello', app);
  await commitServer(dir, 'stable');
  t.is((await rack.push(dir)).code, 0);

  // A gc while rackd is down prunes the unreferenced commit: the branch cannot be moved to it.
  const commit = await pushAndKillRackd(app, dir, 'lost', async () => {
    await exec('git', ['-C', join(rack.home, 'repos', `${app}.git`), 'gc', '--quiet', '--prune=now']);
  });
  const outcome = inFlightOutcome(app);
  t.log('outcome:', outcome);
  t.true(['rolled-back', 'not-serving'].includes(outcome), outcome);
  if (outcome === 'rolled-back') {
    t.regex((await releaseDescriptions(app))[0]!, new RegExp(`^Rollback to v1: the push of ${commit.slice(0, 7)} never reached main$`));
  }
  await assertConsistent(t, app, dir);

  const next = await commitServer(dir, 'after restart');
  const again = await rack.push(dir);
  t.is(again.code, 0, again.stderr);
  t.is(await assertConsistent(t, app, dir), next);
});

test.serial('one deploy branch per app: the other of main and master is refused before building', async (t) => {
  const app = 'one-branch';
  const dir = await rack.appRepo('node-hello', app);
  await commitServer(dir, 'on main');
  t.is((await rack.push(dir)).code, 0);
  const releases = await releaseDescriptions(app);
  await exec('git', ['branch', 'feature'], { cwd: dir });
  const refused = await rack.push(dir, 'feature:master');
  t.not(refused.code, 0);
  t.regex(refused.stderr, /rack deploys one-branch from main; push with "git push rack HEAD:main"/);
  t.notRegex(refused.stderr, /Building/);
  t.is(await remoteHead(dir, 'master'), '');
  t.deepEqual(await releaseDescriptions(app), releases);

  // An app first pushed with master deploys from master, builds:create included.
  const other = await rack.appRepo('node-hello', 'on-master');
  const commit = await commitServer(other, 'on master');
  t.is((await rack.push(other, 'main:master')).code, 0);
  const wrong = await rack.push(other, 'main');
  t.regex(wrong.stderr, /rack deploys on-master from master; push with "git push rack HEAD:master"/);
  t.is(await remoteHead(other, 'main'), '');
  const rebuild = await rack.ssh(['builds:create', '-a', 'on-master']);
  t.is(rebuild.code, 0, rebuild.stderr);
  const builds = JSON.parse((await rack.ssh(['builds', '-a', 'on-master', '--json'])).stdout) as { commit: string }[];
  t.is(builds[0]!.commit, commit);
});

test.serial('a push over RACK_MAX_PUSH is refused with one clear line and changes nothing', async (t) => {
  const app = 'too-big';
  const dir = await rack.appRepo('node-hello', app);
  await commitServer(dir, 'small');
  t.is((await rack.push(dir)).code, 0);
  const head = await remoteHead(dir);
  await writeFile(join(dir, 'blob.bin'), randomBytes(3 * 1024 * 1024));
  await commitServer(dir, 'big');
  const big = await rack.push(dir);
  t.not(big.code, 0);
  t.regex(big.stderr, /push refused: it is over rack's limit of 1 MB \(RACK_MAX_PUSH\)/);
  t.notRegex(big.stderr, /Building/);
  t.is(await remoteHead(dir), head);
  t.deepEqual(await rack.get(app), { status: 200, body: 'small\n' });
});

test('RACK_MAX_PUSH sizes parse, and bad ones are refused', (t) => {
  t.is(parseSize('RACK_MAX_PUSH', '512m'), 512 * 1024 ** 2);
  t.is(parseSize('RACK_MAX_PUSH', '1G'), 1024 ** 3);
  t.is(parseSize('RACK_MAX_PUSH', '100k'), 100 * 1024);
  t.is(parseSize('RACK_MAX_PUSH', '2048'), 2048);
  for (const bad of ['', '0', '-1m', '1.5g', '10x', 'lots']) {
    t.throws(() => parseSize('RACK_MAX_PUSH', bad), { message: /RACK_MAX_PUSH must be a size such as 100m or 1g/ });
  }
  t.is(formatSize(1024 ** 2), '1 MB');
  t.is(formatSize(512 * 1024 ** 2), '512 MB');
});
