import test from 'ava';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { commitFile, exec, headOf, RackDaemon } from './support/rack-daemon.js';

// One daemon and one app for the whole story, run in order: each step builds on the last.
let rack: RackDaemon;
test.before(async () => {
  rack = await RackDaemon.create();
});
test.after.always(async () => {
  await rack?.destroy();
});

const server = (text: string, extra = '') => `const http = require('http');
${extra}
http.createServer((req, res) => res.end('${text} ' + (process.env.GREETING || '') + '\\n')).listen(process.env.PORT);
`;

test.serial('git push deploys an app, a second push swaps it, a broken one is rejected', async (t) => {
  const app = 'deploy-story';
  const dir = await rack.appRepo('node-hello', app);
  await commitFile(dir, 'server.js', server('first'), 'first server');

  // First push creates the app, builds b1, releases v1, and the router serves it.
  const first = await rack.push(dir);
  t.is(first.code, 0, first.stderr);
  t.regex(first.stderr, /remote: -----> Building deploy-story b1/);
  t.regex(first.stderr, /remote: -----> Released v1/);
  t.regex(first.stderr, /http:\/\/deploy-story\.localhost:\d+\/ deployed/);
  t.deepEqual(await rack.get(app), { status: 200, body: 'first \n' });

  // A second push: new build and release, and the new code answers.
  await commitFile(dir, 'server.js', server('second'), 'second server');
  const second = await rack.push(dir);
  t.is(second.code, 0, second.stderr);
  t.regex(second.stderr, /Released v2/);
  t.deepEqual(await rack.get(app), { status: 200, body: 'second \n' });
  const goodHead = await headOf(dir);

  // A commit no buildpack detects fails the build: the push is rejected and v2 keeps serving.
  await rm(join(dir, 'package.json'));
  await commitFile(dir, 'README', 'no app here', 'break the build');
  const broken = await rack.push(dir);
  t.not(broken.code, 0);
  t.regex(broken.stderr, /remote:  !     /);
  t.regex(broken.stderr, /pre-receive hook declined/);
  const remoteHead = await exec('git', ['ls-remote', 'rack', 'refs/heads/main'], { cwd: dir, env: rack.gitEnv() });
  t.true(remoteHead.stdout.startsWith(goodHead), 'the remote branch did not move');
  t.deepEqual(await rack.get(app), { status: 200, body: 'second \n' });

  // A release that crashes on boot never takes traffic; the push fails and v2 stays current.
  await exec('git', ['checkout', '-q', goodHead, '--', 'package.json'], { cwd: dir });
  await commitFile(dir, 'server.js', server('never', 'process.exit(3);'), 'crash on boot');
  const crash = await rack.push(dir);
  t.not(crash.code, 0);
  t.regex(crash.stderr, /v3 failed its health check/);
  t.deepEqual(await rack.get(app), { status: 200, body: 'second \n' });

  // The history tells what happened.
  const releases = await rack.ssh(['releases', '-a', app]);
  t.is(releases.code, 0, releases.stderr);
  const lines = releases.stdout.trim().split('\n');
  t.regex(lines[1]!, /^v3\s+failed\s+b4\s+Deploy [0-9a-f]{7}\s+admin/);
  t.regex(lines[2]!, /^v2\s+current\s+b2\s+Deploy [0-9a-f]{7}\s+admin/);
  t.regex(lines[3]!, /^v1\s+b1\s+Deploy [0-9a-f]{7}/);
  const builds = await rack.ssh(['builds', '-a', app, '--json']);
  t.is(builds.code, 0, builds.stderr);
  const list = JSON.parse(builds.stdout) as { id: number; status: string; commit: string }[];
  t.deepEqual(
    list.map((b) => [b.id, b.status]),
    [
      [4, 'succeeded'],
      [3, 'failed'],
      [2, 'succeeded'],
      [1, 'succeeded'],
    ],
  );
  t.is(list[2]!.commit, goodHead);

  // Only one web container of the app runs: the old ones were stopped.
  await rack.drained(app);
  const ps = await exec('docker', ['ps', '-q', '--filter', `label=rack.app=${app}`]);
  t.is(ps.stdout.trim().split('\n').filter(Boolean).length, 1);
});

test.serial('pushing another branch is refused and changes nothing', async (t) => {
  const app = 'deploy-story';
  const dir = join(rack.work, app);
  const before = await rack.ssh(['releases', '-a', app, '--json']);
  const result = await rack.push(dir, 'HEAD:refs/heads/feature');
  t.not(result.code, 0);
  t.regex(result.stderr, /rack deploys only the main or master branch/);
  const after = await rack.ssh(['releases', '-a', app, '--json']);
  t.is(after.stdout, before.stdout);
});

test.serial('a restarted daemon re-adopts the running app without restarting it', async (t) => {
  const app = 'deploy-story';
  const before = await exec('docker', ['ps', '-q', '--filter', `label=rack.app=${app}`]);
  await rack.stop();
  await rack.start();
  t.deepEqual(await rack.get(app), { status: 200, body: 'second \n' });
  const after = await exec('docker', ['ps', '-q', '--filter', `label=rack.app=${app}`]);
  t.is(after.stdout, before.stdout);
});
