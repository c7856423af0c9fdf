import test from 'ava';
import { spawn } from 'node:child_process';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exec, RackDaemon } from './support/rack-daemon.js';
import { waitFor } from './support/router-processes.js';

let rack: RackDaemon;
test.before(async () => {
  rack = await RackDaemon.create();
  for (const app of ['ops', 'keeper']) {
    const dir = await rack.appRepo('node-ops', app);
    const push = await rack.push(dir);
    if (push.code !== 0) throw new Error(push.stderr);
  }
});
test.after.always(async () => {
  await rack?.destroy();
});

const containers = async (filters: string[]) =>
  (await exec('docker', ['ps', '-aq', ...filters.flatMap((f) => ['--filter', `label=${f}`])])).stdout.split('\n').filter(Boolean);

test.serial('the release phase runs before the rollout, and a failing one changes nothing', async (t) => {
  const push = (await exec('git', ['log', '-1'], { cwd: join(rack.work, 'ops') })).code;
  t.is(push, 0);
  const builds = await rack.ssh(['builds:logs', 'b1', '-a', 'ops']);
  t.is(builds.code, 0);
  const bad = await rack.ssh(['config:set', 'FAIL_MIGRATION=1', '-a', 'ops']);
  t.is(bad.code, 1);
  t.regex(bad.stdout, /Running release command: node migrate\.js/);
  t.regex(bad.stdout, /migration failed/);
  t.notRegex(bad.stdout, /Starting web/, 'a failed release phase starts nothing');
  t.regex(bad.stderr, /the release command failed \(exit status 2\); v1 keeps serving/);
  t.deepEqual(await rack.get('ops'), { status: 200, body: 'ops unmigrated\n' });
  const releases = JSON.parse((await rack.ssh(['releases', '--json', '-a', 'ops'])).stdout) as { status: string; current: boolean }[];
  t.is(releases[0]!.status, 'failed');
  t.true(releases[1]!.current);
  t.deepEqual(await containers(['rack.app=ops', 'rack.role=release']), [], 'release containers are removed');
  // The failed change is not what the app has: config shows what serves, and the next change starts from it.
  t.is((await rack.ssh(['config:get', 'FAIL_MIGRATION', '-a', 'ops'])).code, 1);
  const fixed = await rack.ssh(['config:set', 'MIGRATED=yes', '-a', 'ops']);
  t.is(fixed.code, 0, fixed.stderr);
  // The phase ran for the new release, and before any of its processes started.
  const ran = fixed.stdout.indexOf('Running release command');
  t.true(ran !== -1 && ran < fixed.stdout.indexOf('Starting web'), fixed.stdout);
  t.regex(fixed.stdout, /migrating/);
  t.deepEqual(await rack.get('ops'), { status: 200, body: 'ops yes\n' });
  // A scale or restart is no new release: the phase does not run again.
  const restart = await rack.ssh(['ps:restart', '-a', 'ops']);
  t.is(restart.code, 0, restart.stderr);
  t.notRegex(restart.stdout, /Running release command/);
});

test.serial('ps lists the running web process of the current release', async (t) => {
  await rack.drained('ops');
  const ps = JSON.parse((await rack.ssh(['ps', '--json', '-a', 'ops'])).stdout) as { type: string; release: number; state: string }[];
  const current = JSON.parse((await rack.ssh(['apps:info', '--json', '-a', 'ops'])).stdout) as { currentRelease: number };
  t.deepEqual(ps.map((p) => [p.type, `v${p.release}`, p.state]), [['web', `v${current.currentRelease}`, 'up']]);
  const text = await rack.ssh(['ps', '-a', 'ops']);
  t.regex(text.stdout, /^PROCESS\s+RELEASE\s+STATE\s+UPTIME\s+RESTARTS\s+LIMITS\nweb\.1\s+v\d+\s+up\s+\d+s\s+0\s+memory=512m cpu=1 pids=256 disk=2g$/m);
});

test.serial('run returns the exit status, with and without a TTY, and leaves no container', async (t) => {
  const plain = await rack.ssh(['run', '-a', 'ops', 'echo "out $MIGRATED" && echo err >&2 && exit 3']);
  t.is(plain.code, 3);
  t.is(plain.stdout, 'out yes\n');
  t.is(plain.stderr, 'err\n');
  const input = await rack.ssh(['run', '-a', 'ops', 'wc -c'], { input: 'twelve bytes' });
  t.is(input.code, 0, input.stderr);
  t.is(input.stdout.trim(), '12');
  const tty = await rack.ssh(['run', '-a', 'ops', '[ -t 0 ] && echo has-tty; exit 4'], { extra: ['-tt'] });
  t.is(tty.code, 4);
  t.regex(tty.stdout, /has-tty/);
  const notty = await rack.ssh(['run', '-a', 'ops', '[ -t 0 ] || echo no-tty']);
  t.is(notty.stdout, 'no-tty\n');
  t.deepEqual(await containers(['rack.app=ops', 'rack.role=run']), []);
});

test.serial('run removes its container when the client drops', async (t) => {
  const child = spawn('ssh', [...rack.sshArgs(), '--', 'run', '-a', 'ops', 'sleep 300'], { stdio: 'ignore' });
  for (let i = 0; i < 50 && (await containers(['rack.app=ops', 'rack.role=run'])).length === 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  t.is((await containers(['rack.app=ops', 'rack.role=run'])).length, 1);
  child.kill('SIGKILL');
  let left = 1;
  for (let i = 0; i < 100 && left > 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    left = (await containers(['rack.app=ops', 'rack.role=run'])).length;
  }
  t.is(left, 0);
});

test.serial('logs shows process output and router lines; -f streams new lines live', async (t) => {
  await rack.get('ops', '/before');
  const logs = await rack.ssh(['logs', '-n', '50', '-a', 'ops']);
  t.is(logs.code, 0, logs.stderr);
  t.regex(logs.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z app\[web\.[0-9a-f]+\]: got \/before$/m);
  // The router sends a line per request only while someone follows (below): none for /before.
  t.notRegex(logs.stdout, /rack\[router\]: .*path="\/before"/);
  const onlyWeb = await rack.ssh(['logs', '-p', 'web', '-a', 'ops']);
  t.notRegex(onlyWeb.stdout, /rack\[router\]/);

  const child = spawn('ssh', [...rack.sshArgs(), '--', 'logs', '-f', '-n', '0', '-a', 'ops'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let seen = '';
  child.stdout.on('data', (c: Buffer) => (seen += c.toString()));
  // The follower attaches a moment after ssh starts: requests go on until it shows one, both the
  // app's line and the router's (the router is told to send an app's lines once someone follows).
  let asked = 0;
  await waitFor('logs -f to show a request made while it follows', async () => {
    if (Date.now() - asked > 250) {
      asked = Date.now();
      await rack.get('ops', '/live-marker');
    }
    return seen.includes('got /live-marker') && /rack\[router\]: .*path="\/live-marker".*status=200/.test(seen);
  });
  child.kill();
});

test.serial('a domain routes to its app, belongs to one app at a time, and can be removed', async (t) => {
  const add = await rack.ssh(['domains:add', 'WWW.Example.test', '-a', 'ops']);
  t.is(add.code, 0, add.stderr);
  const viaDomain = await exec('curl', ['-s', '-H', 'Host: www.example.test', `http://127.0.0.1:${rack.httpPort}/`]);
  t.is(viaDomain.stdout, 'ops yes\n');
  const taken = await rack.ssh(['domains:add', 'www.example.test', '-a', 'keeper']);
  t.is(taken.code, 1);
  t.regex(taken.stderr, /already belongs to another app \(ops\)/);
  const steal = await rack.ssh(['domains:add', 'keeper.localhost', '-a', 'ops']);
  t.is(steal.code, 1);
  t.regex(steal.stderr, /default host of app keeper/);
  t.deepEqual(JSON.parse((await rack.ssh(['domains', '--json', '-a', 'ops'])).stdout), {
    default: 'ops.localhost',
    domains: ['www.example.test'],
  });
  const remove = await rack.ssh(['domains:remove', 'www.example.test', '-a', 'ops']);
  t.is(remove.code, 0, remove.stderr);
  const gone = await exec('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Host: www.example.test', `http://127.0.0.1:${rack.httpPort}/`]);
  t.is(gone.stdout, '404');
});

test.serial('apps:destroy removes everything of the app and touches nothing else', async (t) => {
  const keeperBefore = await containers(['rack.app=keeper']);
  const unconfirmed = await rack.ssh(['apps:destroy', 'ops']);
  t.is(unconfirmed.code, 1);
  t.regex(unconfirmed.stderr, /--confirm ops/);
  const wrong = await rack.ssh(['apps:destroy', 'ops', '--confirm', 'keeper']);
  t.is(wrong.code, 1);
  const destroy = await rack.ssh(['apps:destroy', 'ops', '--confirm', 'ops']);
  t.is(destroy.code, 0, destroy.stderr);
  t.deepEqual(await containers(['rack.app=ops']), []);
  // This rackd's images only: another run on the machine may have an app of the same name.
  const instance = (await readFile(join(rack.home, 'instance-id'), 'utf8')).trim();
  const images = await exec('docker', ['images', '-q', '--filter', `label=rack.instance=${instance}`, 'rack/ops']);
  t.is(images.stdout.trim(), '');
  await t.throwsAsync(access(join(rack.home, 'repos', 'ops.git')));
  await t.throwsAsync(access(join(rack.home, 'cache', 'ops')));
  t.is((await rack.get('ops')).status, 404);
  const apps = JSON.parse((await rack.ssh(['apps', '--json'])).stdout) as { name: string }[];
  t.deepEqual(apps.map((a) => a.name), ['keeper']);
  t.deepEqual(await containers(['rack.app=keeper']), keeperBefore);
  t.deepEqual(await rack.get('keeper'), { status: 200, body: 'ops unmigrated\n' });
  // The name is free again, with a fresh history.
  const dir = join(rack.work, 'ops');
  const again = await rack.push(dir);
  t.is(again.code, 0, again.stderr);
  const releases = JSON.parse((await rack.ssh(['releases', '--json', '-a', 'ops'])).stdout) as { version: number }[];
  t.deepEqual(releases.map((r) => r.version), [1]);
});
