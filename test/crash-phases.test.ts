import test from 'ava';
import { spawn } from 'node:child_process';
import { commitFile, exec, RackDaemon } from './support/rack-daemon.js';

// rackd killed (SIGKILL) at every phase of a push, the kill started from the phase's own output
// line. After a restart the invariant holds: what serves is the head of the deploy branch, nothing
// rackd made is left behind, no build is left `building`, and the next push works.

let rack: RackDaemon;
let dir: string;
const app = 'phases';
const versions = new Map<string, string>(); // commit → the VERSION it serves

test.before(async () => {
  rack = await RackDaemon.create();
  dir = await rack.appRepo('phases', app);
  const push = await rack.push(dir);
  if (push.code !== 0) throw new Error(push.stderr);
  versions.set(await head(), 'v0');
});
test.after.always(async () => {
  await rack?.destroy();
});

async function head(): Promise<string> {
  return (await exec('git', ['rev-parse', 'HEAD'], { cwd: dir })).stdout.trim();
}

/** Pushes, and kills rackd when the push's output first shows `line`; resolves when git is done. */
function pushAndKillAt(line: RegExp): Promise<{ killed: boolean; output: string }> {
  return new Promise((resolve, reject) => {
    const git = spawn('git', ['push', 'rack', 'main'], { cwd: dir, env: rack.gitEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let killed = false;
    const seen = (c: Buffer) => {
      output += c.toString();
      if (!killed && line.test(output)) {
        killed = true;
        void rack.stop('SIGKILL');
      }
    };
    git.stdout.on('data', seen);
    git.stderr.on('data', seen);
    git.on('error', reject);
    git.on('close', () => resolve({ killed, output }));
  });
}

async function invariantHolds(t: import('ava').ExecutionContext, phase: string): Promise<void> {
  const remote = await exec('git', ['ls-remote', 'rack', 'refs/heads/main'], { cwd: dir, env: rack.gitEnv() });
  const branchHead = remote.stdout.split(/\s/)[0]!;
  t.true(versions.has(branchHead), `${phase}: the branch points at a pushed commit`);
  t.deepEqual(await rack.get(app), { status: 200, body: `${versions.get(branchHead)}\n` }, `${phase}: what serves is the branch head`);
  const releases = JSON.parse((await rack.ssh(['releases', '--json', '-a', app])).stdout) as { status: string; current: boolean; description: string }[];
  t.false(releases.some((r) => r.status === 'pending'), `${phase}: no release left pending`);
  const builds = JSON.parse((await rack.ssh(['builds', '--json', '-a', app])).stdout) as { status: string }[];
  t.false(builds.some((b) => b.status === 'building'), `${phase}: no build left building`);
  const id = (await exec('cat', [`${rack.home}/instance-id`])).stdout.trim();
  const left = await exec('docker', ['ps', '-a', '--format', '{{.Label "rack.role"}}', '--filter', `label=rack.instance=${id}`, '--filter', `label=rack.app=${app}`]);
  t.deepEqual(left.stdout.split('\n').filter(Boolean), ['process'], `${phase}: one web process, nothing else left`);
}

const PHASES: [string, RegExp][] = [
  ['the build', /Building phases b\d+ from/],
  ['the release phase', /Running release command/],
  ['the start of the new processes', /Starting web=1 of v\d+/],
  ['the switch', /router switched to v\d+/],
];

for (const [i, [phase, line]] of PHASES.entries()) {
  test.serial(`rackd killed during ${phase}`, async (t) => {
    await commitFile(dir, 'VERSION', `v${i + 1}\n`, `v${i + 1}`);
    versions.set(await head(), `v${i + 1}`);
    const { killed, output } = await pushAndKillAt(line);
    t.true(killed, output);
    await rack.stop('SIGKILL');
    await rack.start();
    await exec('git', ['remote', 'set-url', 'rack', rack.remote(app)], { cwd: dir });
    await invariantHolds(t, phase);
    // And the next push works.
    await commitFile(dir, 'VERSION', `v${i + 1}b\n`, `v${i + 1}b`);
    versions.set(await head(), `v${i + 1}b`);
    const again = await rack.push(dir);
    t.is(again.code, 0, again.stderr);
    t.deepEqual(await rack.get(app), { status: 200, body: `v${i + 1}b\n` });
  });
}
