import test from 'ava';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { quote } from 'shell-quote';
import { exec, RackDaemon } from './support/rack-daemon.js';
import { waitFor } from './support/router-processes.js';

// Hundreds of malformed or hostile inputs against a daemon serving one app; each must get one clear
// error line and a non-zero exit, and afterwards nothing stored or running may have changed.
const app = 'victim';
let rack: RackDaemon;
let dir: string;

test.before(async () => {
  rack = await RackDaemon.create();
  dir = await rack.appRepo('node-hello', app);
  const push = await rack.push(dir);
  if (push.code !== 0) throw new Error(push.stderr);
  const set = await rack.ssh(['config:set', 'SECRET=keep-me', '-a', app]);
  if (set.code !== 0) throw new Error(set.stderr);
});
test.after.always(async () => {
  await rack?.destroy();
});

const instance = async () => (await readFile(join(rack.home, 'instance-id'), 'utf8')).trim();

async function snapshot() {
  // Old processes of the set-up's last rollout may still be draining; wait until they are gone.
  await rack.drained(app);
  const ask = async (args: string[]) => (await rack.ssh(args)).stdout;
  return {
    apps: await ask(['apps', '--json']),
    releases: await ask(['releases', '--json', '-a', app]),
    builds: await ask(['builds', '--json', '-a', app]),
    config: await ask(['config', '--json', '-a', app]),
    domains: await ask(['domains', '--json', '-a', app]),
    keys: await ask(['keys', '--json']),
    repos: (await readdir(join(rack.home, 'repos'))).sort(),
    // Only this daemon's: other tests on the machine may run an app of the same name.
    containers: (await exec('docker', ['ps', '-q', '--filter', `label=rack.app=${app}`, '--filter', `label=rack.instance=${await instance()}`])).stdout,
    serving: await rack.get(app),
  };
}

const BAD_NAMES = [
  '../etc', '../../etc/passwd', '/etc/passwd', '.', '..', '.git', 'A', 'Victim', 'vic tim', 'vic;tim', 'vic|tim',
  'vic$(id)', 'vic`id`', 'vic\\tim', 'vic/tim', 'vic%2e%2e', '%2e%2e', '-victim', 'victim-', 'vic--tim', 'vic_tim',
  'vic.tim', 'x'.repeat(31), 'ünï', '~root', '*', 'victim\ttab', "vic'tim", 'vic"tim', '',
];

/** Command lines, each sent as the exact string ssh delivers to the server. */
function hostileLines(): string[] {
  const lines: string[] = [];
  for (const name of BAD_NAMES) {
    for (const cmd of ['releases', 'config', 'apps:info', 'builds', 'logs']) lines.push(quote([cmd, '-a', name]));
    lines.push(quote(['apps:create', name]));
    lines.push(quote(['apps:destroy', name, '--confirm', name]));
  }
  lines.push('apps:create stack', 'apps:create rack'); // reserved names
  lines.push(
    'frobnicate', 'rm -rf /', 'sh -c id', 'bash', '/bin/sh', 'apps; id', 'apps | id', 'apps && id', 'apps || id',
    'apps > /tmp/x', 'apps < /etc/passwd', 'apps & id', 'apps $(id)', 'apps `id`', 'apps # comment', 'apps\nid',
    "apps 'unterminated", 'apps "unterminated', 'config:set', 'config:set =x -a victim', 'config:set A -a victim',
    'config:set 1A=2 -a victim', 'config:set A-B=2 -a victim', 'config:set PORT=1 -a victim', 'config:set SECRET=keep-me -a victim',
    'config:set A.B=1 -a victim', 'config:set "A B=1" -a victim', 'config:set $HOME=1 -a victim',
    // Over the 32 KiB value limit; far longer lines are cut by the SSH transport's packet limit.
    quote(['config:set', `BIG=${'x'.repeat(33 * 1024)}`, '-a', app]), 'config:unset -a victim', 'config:unset NOPE -a victim',
    'config:unset 1X -a victim', 'config:get -a victim', 'config:get NOPE -a victim', 'config:get ../x -a victim',
    'releases:info -a victim', 'releases:info v0 -a victim', 'releases:info v-1 -a victim', 'releases:info vx -a victim',
    'releases:info v99999 -a victim', 'releases:info v1 v2 -a victim', 'releases:rollback v99 -a victim',
    'releases:rollback x -a victim', 'releases:promote -a victim', 'releases:promote v1e3 -a victim',
    'builds:info -a victim', 'builds:info b0 -a victim', 'builds:info bb1 -a victim', 'builds:logs b99 -a victim',
    'keys:add', 'keys:add ../evil', 'keys:add "bad name"', 'keys:add ok --app ../x', 'keys:add ok --deploy-only',
    'keys:add ok --app nope', 'keys:remove', 'keys:remove nope', 'keys:remove admin', 'keys --bogus',
    'domains:add -a victim', 'domains:add .. -a victim', 'domains:add localhost -a victim', 'domains:add -x.com -a victim',
    'domains:add a..b -a victim', 'domains:add victim.localhost -a victim', 'domains:add other.localhost -a victim',
    quote(['domains:add', `${'a'.repeat(70)}.com`, '-a', app]), 'domains:add ex_ample.com -a victim', 'domains:remove nope.com -a victim',
    'logs -n abc -a victim', 'logs -n -1 -a victim', 'logs -n 999999999 -a victim', 'logs -p ../x -a victim', 'logs --bogus -a victim',
    'run', 'run -a', 'run -a victim', 'run --bogus id', 'run -x id', 'run --', 'run -a victim --', 'run -a ../x id', 'run -a nope id', 'apps extra', 'apps --json extra', 'version 1',
    'releases -a', 'releases --app', 'releases -a victim -a', '--app victim releases', '-a victim', '--help', '""', "''",
    'apps:destroy victim', 'apps:destroy victim --confirm other', 'apps:destroy victim --confirm', 'apps:create victim',
    'releases -a victim --json=1', 'config:set A=1 --no-deploy=yes -a victim', 'help me please now',
    'git-receive-pack', 'git-receive-pack a b', 'git-upload-pack', 'git-upload-pack /nope', 'git-upload-pack /../victim',
    'scp -t /tmp', 'sftp', 'git-upload-archive /victim', 'exec id', 'env', 'cd /', 'ps:scale web=1000000 -a victim',
    // Names every JavaScript object inherits are no config keys or process types of the app.
    'config:get constructor -a victim', 'config:get __proto__ -a victim', 'config:get toString -a victim',
    'config:unset __proto__ -a victim', 'config:unset hasOwnProperty -a victim', 'ps:scale constructor=1 -a victim',
    'ps:scale __proto__=1 -a victim', 'ps:restart toString -a victim', 'ps:limit hasOwnProperty memory=256m -a victim',
  );
  for (const path of [
    '/../victim', '/etc/passwd', '//victim', '/victim/../../x', '%2e%2e/victim', '/victim%2f..', '~root/victim', '/.git',
    '/victim.git.git', '/Victim', '/vic tim', '', "'", '/victim/', 'victim/.git', '/victim.git/', '../../../tmp/x',
    '/tmp/x', '\\victim', '/victim\\x00', '/x/y/z', '/-victim', '/victim;id', '/$(id)', '/`id`',
  ]) {
    lines.push(quote(['git-receive-pack', path]));
    lines.push(quote(['git-upload-pack', path]));
  }
  return lines;
}

test.serial('hundreds of malformed and hostile command lines each get one clear error and change nothing', async (t) => {
  const before = await snapshot();
  const lines = hostileLines();
  t.true(lines.length >= 200, `${lines.length} lines`);
  const mux = rack.multiplexed();
  const failures: string[] = [];
  for (const line of lines) {
    const r = await exec('ssh', [...mux, ...rack.sshArgs(), '--', line]);
    const shown = JSON.stringify(line.slice(0, 80));
    if (r.code === 0) failures.push(`${shown} exited 0`);
    else if (!/^ !     \S.*\n$/.test(r.stderr)) failures.push(`${shown}: stderr not one error line: ${JSON.stringify(r.stderr.slice(0, 200))}`);
  }
  t.deepEqual(failures, []);
  t.log(`${lines.length} hostile command lines refused`);
  t.deepEqual(await snapshot(), before);
});

test.serial('hostile pushes are refused and change nothing', async (t) => {
  const before = await snapshot();
  const env = rack.gitEnv();
  const git = (args: string[]) => exec('git', args, { cwd: dir, env });
  const head = (await git(['rev-parse', 'HEAD'])).stdout.trim();
  await git(['tag', 'v1']);
  const cases: [string[], RegExp][] = [
    [['push', 'rack', 'v1'], /rack deploys only the main or master branch/],
    [['push', 'rack', 'HEAD:refs/heads/feature'], /rack deploys only the main or master branch/],
    [['push', 'rack', ':main'], /deleting main is not allowed/],
    [['push', `ssh://git@127.0.0.1:${rack.sshPort}/../victim`, 'main'], /invalid app name/],
    [['push', `ssh://git@127.0.0.1:${rack.sshPort}/Victim`, 'main'], /invalid app name/],
    [['push', `ssh://git@127.0.0.1:${rack.sshPort}/%2e%2e`, 'main'], /invalid app name/],
  ];
  for (const [args, pattern] of cases) {
    const r = await git(args);
    t.not(r.code, 0, args.join(' '));
    t.regex(r.stderr, pattern, args.join(' '));
  }
  // A push cut off mid-build: git is killed while rack builds; nothing is released.
  await git(['commit', '-q', '--allow-empty', '-m', 'interrupted']);
  // Its own process group, killed whole, as Ctrl-C in a terminal kills git and its ssh.
  const child = (await import('node:child_process')).spawn('git', ['push', 'rack', 'main'], { cwd: dir, env, stdio: 'pipe', detached: true });
  let seen = '';
  child.stderr.on('data', (c: Buffer) => (seen += c.toString()));
  for (let i = 0; i < 200 && !seen.includes('Building'); i++) await new Promise((r) => setTimeout(r, 25));
  process.kill(-child.pid!, 'SIGKILL');
  // The build under way goes on to its end (builds are kept); what follows is judged after it.
  await waitFor('the cut-off push\'s build to end', async () => {
    const [last] = JSON.parse((await rack.ssh(['builds', '--json', '-a', app])).stdout) as { status: string }[];
    return last !== undefined && (last.status === 'succeeded' || last.status === 'failed');
  }, 300_000);
  const after = await snapshot();
  // The build may have finished (builds are kept), but no release came of it and main stayed.
  const builds = JSON.parse(after.builds) as { status: string }[];
  t.true(['succeeded', 'failed'].includes(builds[0]!.status));
  t.deepEqual({ ...after, builds: '' }, { ...before, builds: '' });
  const remote = await git(['ls-remote', 'rack', 'refs/heads/main']);
  t.true(remote.stdout.startsWith(head), 'main did not move');
});
