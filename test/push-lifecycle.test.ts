import test from 'ava';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, readdir, readlink, realpath, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { api } from './support/api-client.js';
import { commitFile, exec, FIXTURES, headOf, RackDaemon, type Result } from './support/rack-daemon.js';

// How a push begins and ends around the client and rackd: a client that goes silent, a rackd
// killed in the middle of a pack, a rackd told to stop while a push builds. One rackd for the file.
const SHORT_IDLE = { RACK_PUSH_IDLE_TIMEOUT: '3' };
let rack: RackDaemon;
test.before(async () => {
  rack = await RackDaemon.create(SHORT_IDLE);
});
test.after.always(async () => {
  await rack?.destroy();
});

/** `promise`, or a failure naming `what` after a generous bound (a hang is a failure, not a stuck run). */
async function bounded<T>(what: string, promise: Promise<T>, ms = 120_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** rackd's log lines about the end of the app's pushes. */
function pushesFinished(app: string): Record<string, unknown>[] {
  return rack.output
    .split('\n')
    .filter((l) => l.includes('"push finished"') && l.includes(`"app":"${app}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

interface RawPush {
  child: ChildProcessWithoutNullStreams;
  /** Resolves once git-receive-pack has advertised the refs: the push holds the app's push lock. */
  advertised: Promise<void>;
  done: Promise<Result>;
}

/** `ssh rack git-receive-pack 'APP'` driven by the test: the client writes only what it is given. */
function rawPush(app: string): RawPush {
  const child = spawn('ssh', [...rack.sshArgs(), '--', `git-receive-pack '${app}'`], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdin.on('error', () => undefined);
  const advertised = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('latin1');
      resolve();
    });
    child.once('close', () => reject(new Error(`the push ended before git advertised:\n${stderr}`)));
  });
  advertised.catch(() => undefined);
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<Result>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
  return { child, advertised, done };
}

/** One pkt-line of git's protocol. */
function pktLine(text: string): Buffer {
  return Buffer.from(`${(text.length + 4).toString(16).padStart(4, '0')}${text}`, 'latin1');
}

function updateCommand(oldRev: string, newRev: string): Buffer {
  return Buffer.concat([pktLine(`${oldRev} ${newRev} refs/heads/main\0report-status side-band-64k\n`), Buffer.from('0000')]);
}

const server = (label: string) => `require('http').createServer((req, res) => res.end('${label}\\n')).listen(process.env.PORT);\n`;

test.serial('a push that sends nothing is ended after RACK_PUSH_IDLE_TIMEOUT, told why, and the next push goes through', async (t) => {
  const app = 'stall';
  const dir = await rack.appRepo('node-hello', app);
  const first = await rack.push(dir);
  t.is(first.code, 0, first.stderr);

  const stalled = rawPush(app);
  await bounded('the advertisement', stalled.advertised);
  await commitFile(dir, 'server.js', server('after the stall'), 'after the stall');
  const next = rack.push(dir);
  const ended = await bounded('rack to end the silent push', stalled.done);
  t.not(ended.code, 0);
  t.regex(ended.stderr, /^ !     No data from your push for 3 s: rack ended it$/m);
  const pushed = await bounded('the next push', next);
  t.is(pushed.code, 0, pushed.stderr);
  t.deepEqual(await rack.get(app), { status: 200, body: 'after the stall\n' });
  t.true(pushesFinished(app).some((l) => l['idle'] === true));
});

test.serial('an HTTP push whose body stops coming is ended too, and frees the app', async (t) => {
  const app = 'stall';
  const token = await rack.createToken('stall-pusher', ['--app', app]);
  const head = await headOf(join(rack.work, app));
  const idleBefore = pushesFinished(app).filter((l) => l['idle'] === true).length;
  // Straight to rackd's socket: what is measured is rackd's deadline, not the router's.
  const answered = new Promise<string>((resolve) => {
    const req = request(
      {
        socketPath: join(rack.home, 'api.sock'),
        method: 'POST',
        path: `/${app}.git/git-receive-pack`,
        headers: {
          Host: 'rack.localhost',
          Authorization: `Bearer ${token}`,
          'User-Agent': 'git/2.39.5',
          'Content-Type': 'application/x-git-receive-pack-request',
          'Content-Length': '100000',
        },
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(`${res.statusCode} ${body}`));
        res.on('aborted', () => resolve(`${res.statusCode} cut`));
        res.on('error', () => resolve(`${res.statusCode} cut`));
      },
    );
    req.on('error', () => resolve('connection closed'));
    req.write(updateCommand(head, 'b'.repeat(40)));
  });
  const outcome = await bounded('rack to end the silent HTTP push', answered);
  t.log(outcome);
  await until('the push to be logged as ended', () => pushesFinished(app).filter((l) => l['idle'] === true && l['via'] === 'http').length > 0);
  t.true(pushesFinished(app).filter((l) => l['idle'] === true).length > idleBefore);

  const dir = join(rack.work, app);
  await commitFile(dir, 'server.js', server('after the HTTP stall'), 'after the HTTP stall');
  const pushed = await bounded('the next push', rack.push(dir));
  t.is(pushed.code, 0, pushed.stderr);
  t.notRegex(pushed.stderr, /Waiting for another push/);
});

/** The processes working in `dir` (git-receive-pack, index-pack and the hook all run in the repo). */
async function processesIn(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cwd = await readlink(join('/proc', entry, 'cwd')).catch(() => '');
    if (cwd === dir || cwd.startsWith(`${dir}/`)) pids.push(Number(entry));
  }
  return pids;
}

async function quarantines(app: string): Promise<string[]> {
  return (await readdir(join(rack.home, 'repos', `${app}.git`, 'objects'))).filter((n) => n.includes('incoming-'));
}

test.serial('rackd killed in the middle of a pack: its receive-pack dies with it, and the quarantine goes at the next start', async (t) => {
  await rack.stop();
  await rack.start();
  const app = 'cut-off';
  const dir = await rack.appRepo('node-hello', app);
  t.is((await rack.push(dir)).code, 0);
  const oldRev = await headOf(dir);
  await writeFile(join(dir, 'blob.bin'), randomBytes(4 * 1024 * 1024));
  await commitFile(dir, 'server.js', server('big'), 'big');
  const newRev = await headOf(dir);
  const pack = spawnSync('git', ['pack-objects', '--revs', '--stdout', '-q'], { cwd: dir, maxBuffer: 64 * 1024 * 1024, input: `${newRev}\n^${oldRev}\n` });
  t.is(pack.status, 0, pack.stderr.toString());

  const push = rawPush(app);
  await bounded('the advertisement', push.advertised);
  push.child.stdin.write(Buffer.concat([updateCommand(oldRev, newRev), pack.stdout.subarray(0, pack.stdout.length >> 1)]));
  await until('the pack to be in quarantine', async () => (await quarantines(app)).length > 0);
  const repo = await realpath(join(rack.home, 'repos', `${app}.git`));
  t.true((await processesIn(repo)).length > 0, 'git-receive-pack runs');

  await rack.stop('SIGKILL');
  await until('git to stop with rackd', async () => (await processesIn(repo)).length === 0, 30_000);
  push.child.kill();
  t.log('left in quarantine once git stopped:', await quarantines(app));
  // What a git killed outright (or on a host without setpriv) leaves: the next start removes it.
  await mkdir(join(repo, 'objects', 'tmp_objdir-incoming-Left01', 'pack'), { recursive: true });
  await writeFile(join(repo, 'objects', 'tmp_objdir-incoming-Left01', 'pack', 'tmp_pack_x'), randomBytes(1024));

  await rack.start();
  t.deepEqual(await quarantines(app), [], 'removed at start');
  await exec('git', ['remote', 'set-url', 'rack', rack.remote(app)], { cwd: dir });
  const again = await rack.push(dir);
  t.is(again.code, 0, again.stderr);
  t.deepEqual(await rack.get(app), { status: 200, body: 'big\n' });
});

/** A program whose output is kept as it comes. */
function watched(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (c: Buffer) => (out.stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out.stderr += c.toString()));
  const done = new Promise<Result>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, ...out }));
  });
  return { child, out, done };
}

test.serial('SIGTERM while a push builds: new commands are refused, the push finishes, open sessions are told why they end, and the branch serves', async (t) => {
  await rack.stop();
  await rack.start({ RACK_STOP_GRACE: '240' });
  const app = 'term';
  const dir = await rack.appRepo('node-hello', app);
  t.is((await rack.push(dir)).code, 0);
  await commitFile(dir, 'server.js', server('pushed while stopping'), 'pushed while stopping');
  const commit = await headOf(dir);
  const token = /rack_[A-Za-z0-9_-]+/.exec((await rack.ssh(['tokens:create', 'term-ci', '--app', app])).stdout)![0];

  // A session that would never end on its own.
  const follower = watched('ssh', [...rack.sshArgs(), '--', 'logs', '-f', '-a', app]);
  await until('logs -f to follow', async () => {
    await rack.get(app); // a router line in the app's log
    return follower.out.stdout.includes('rack[router]');
  });

  const push = watched('git', ['push', 'rack', 'main'], { cwd: dir, env: rack.gitEnv() });
  await until('the build to start', () => /remote: -----> /.test(push.out.stderr));
  const rackd = rack.child!;
  const exited = new Promise<number | null>((resolve) => rackd.once('exit', (code) => resolve(code)));
  const stops = () => rack.output.split('"msg":"stopping"').length;
  const before = stops();
  rackd.kill('SIGTERM');
  await until('rackd to begin stopping', () => stops() > before);

  const refused = await rack.ssh(['apps']);
  t.not(refused.code, 0);
  t.regex(refused.stderr, /^ !     rack is restarting; try again in a moment$/m);
  // Over the API too: a change is refused, not started.
  const change = await api(rack, 'PATCH', `/api/v1/apps/${app}/config`, { token, body: { set: { LATE: '1' } } });
  t.is(change.status, 503, change.text);
  t.regex(change.text, /rack is restarting/);

  const pushed = await bounded('the push', push.done, 240_000);
  t.is(pushed.code, 0, pushed.stderr);
  t.notRegex(pushed.stderr, /hung up/);
  const followed = await bounded('logs -f to be ended', follower.done);
  t.not(followed.code, 0);
  t.regex(followed.stderr, /^ !     rack is restarting; try again in a moment$/m);
  t.is(await bounded('rackd to exit', exited), 0);

  await rack.start(SHORT_IDLE);
  await exec('git', ['remote', 'set-url', 'rack', rack.remote(app)], { cwd: dir });
  const remote = await exec('git', ['ls-remote', 'rack', 'refs/heads/main'], { cwd: dir, env: rack.gitEnv() });
  t.is(remote.stdout.split(/\s/)[0], commit, 'the branch has the push');
  t.is(await rack.servingCommit(app), commit, 'and it serves');
  t.deepEqual(await rack.get(app), { status: 200, body: 'pushed while stopping\n' });
  t.false('LATE' in JSON.parse((await rack.ssh(['config', '--json', '-a', app])).stdout), 'the refused change was not made');
});

test.serial('SIGTERM while a build outlasts RACK_STOP_GRACE: the pusher is told rack is restarting, and nothing half-done serves', async (t) => {
  await rack.stop();
  await rack.start({ RACK_STOP_GRACE: '2' });
  const app = 'term-slow';
  const dir = await rack.appRepo('node-hello', app);
  t.is((await rack.push(dir)).code, 0);
  const before = await headOf(dir);
  const slow = join(rack.home, 'buildpacks', 'slow');
  await cp(join(FIXTURES, 'slow-buildpack'), slow, { recursive: true });
  await commitFile(dir, '.buildpacks', `${slow}\n`, 'a build that never ends');

  const push = watched('git', ['push', 'rack', 'main'], { cwd: dir, env: rack.gitEnv() });
  await until('the slow build to start', () => /Compiling very slowly/.test(push.out.stderr));
  const rackd = rack.child!;
  const exited = new Promise<void>((resolve) => rackd.once('exit', () => resolve()));
  rackd.kill('SIGTERM');
  const pushed = await bounded('the push to be ended', push.done);
  t.not(pushed.code, 0);
  t.regex(pushed.stderr, /^ !     rack is restarting; try again in a moment$/m);
  await bounded('rackd to exit', exited);

  await rack.start(SHORT_IDLE);
  await exec('git', ['remote', 'set-url', 'rack', rack.remote(app)], { cwd: dir });
  const remote = await exec('git', ['ls-remote', 'rack', 'refs/heads/main'], { cwd: dir, env: rack.gitEnv() });
  t.is(remote.stdout.split(/\s/)[0], before, 'the branch did not move');
  t.is(await rack.servingCommit(app), before);
  t.is((await rack.get(app)).status, 200);
});

test.serial('a push check that cannot mend what serves stays pending, shows in apps:info, and the next push settles it', async (t) => {
  await rack.stop();
  await rack.start(SHORT_IDLE);
  const app = 'unmendable';
  const dir = await rack.appRepo('node-hello', app);
  await commitFile(dir, 'server.js', server('stable'), 'stable');
  t.is((await rack.push(dir)).code, 0);

  // rackd dies right after the switch to v2, before git moves the branch.
  await commitFile(dir, 'server.js', server('in flight'), 'in flight');
  const push = watched('git', ['push', 'rack', 'main'], { cwd: dir, env: rack.gitEnv() });
  const killed = rack.child!;
  // At once, on the line itself: git moves the branch moments after the switch.
  push.child.stderr.on('data', () => {
    if (/router switched/.test(push.out.stderr)) killed.kill('SIGKILL');
  });
  const cut = await push.done;
  t.not(cut.code, 0, 'the push outlived rackd');
  if (killed.exitCode === null && killed.signalCode === null) await new Promise((r) => killed.once('exit', r));
  // Neither repair can work now: the commit is pruned from the repo, v1's image is gone.
  await exec('git', ['-C', join(rack.home, 'repos', `${app}.git`), 'gc', '--quiet', '--prune=now']);
  const images = await exec('docker', ['images', '--format', '{{.Repository}}:{{.Tag}}', `rack/${app}`]);
  const v1 = images.stdout.split('\n').filter((i) => i.startsWith(`rack/${app}:b1-`));
  t.is(v1.length, 1, images.stdout);
  await exec('docker', ['rmi', '-f', ...v1]);

  await rack.start(SHORT_IDLE);
  t.log(rack.output.split('\n').filter((l) => l.includes('in flight')).slice(-1));
  const info = await rack.ssh(['apps:info', '-a', app]);
  t.is(info.code, 0, info.stderr);
  t.regex(info.stdout, /pushCheck:\s+pending since \S+: v2 \(\w{7} on main\) could not be mended \(last try \S+: the image of v1 \(rack\/unmendable:b1-\w+\) was pruned; cannot roll back\)/);

  await exec('git', ['remote', 'set-url', 'rack', rack.remote(app)], { cwd: dir });
  await commitFile(dir, 'server.js', server('mended'), 'mended');
  const next = await rack.push(dir);
  t.is(next.code, 0, next.stderr);
  t.notRegex((await rack.ssh(['apps:info', '-a', app])).stdout, /pushCheck/);
  t.deepEqual(await rack.get(app), { status: 200, body: 'mended\n' });
});
