import test from 'ava';
import { Agent, request } from 'node:http';
import { exec, RackDaemon } from './support/rack-daemon.js';

// Formation, health checks, crash restarts and swaps under a request in flight, on one app.
const app = 'procs';
let rack: RackDaemon;

test.before(async () => {
  rack = await RackDaemon.create();
  const dir = await rack.appRepo('node-procs', app);
  const push = await rack.push(dir);
  if (push.code !== 0) throw new Error(push.stderr);
});
test.after.always(async () => {
  await rack?.destroy();
});

interface Proc {
  name: string;
  type: string;
  release: number;
  state: string;
  restarts: number;
  startedAt: string;
}
const ps = async () => JSON.parse((await rack.ssh(['ps', '--json', '-a', app])).stdout) as Proc[];
const count = (procs: Proc[], type: string) => procs.filter((p) => p.type === type && p.state === 'up').length;
const releaseCount = async () => (JSON.parse((await rack.ssh(['releases', '--json', '-a', app])).stdout) as unknown[]).length;

test.serial('ps:scale runs more processes of each type and fewer again, with no new release', async (t) => {
  const releases = await releaseCount();
  t.is(count(await ps(), 'web'), 1);
  t.is(count(await ps(), 'worker'), 0);
  const up = await rack.ssh(['ps:scale', 'web=2', 'worker=1', '-a', app]);
  t.is(up.code, 0, up.stderr);
  t.regex(up.stdout, /Scaled procs to web=2 worker=1/);
  const procs = await ps();
  t.is(count(procs, 'web'), 2);
  t.is(count(procs, 'worker'), 1);
  const seen = new Set<string>();
  for (let i = 0; i < 10; i++) seen.add((await rack.get(app)).body);
  t.is(seen.size, 2, 'round robin over both web processes');
  // A new release keeps the scaled formation, and records it.
  const set = await rack.ssh(['config:set', 'SCALED=yes', '-a', app]);
  t.is(set.code, 0, set.stderr);
  t.is(count(await ps(), 'web'), 2);
  t.is(count(await ps(), 'worker'), 1);
  const [latest] = JSON.parse((await rack.ssh(['releases', '--json', '-a', app])).stdout) as { version: number }[];
  const info = JSON.parse((await rack.ssh(['releases:info', `v${latest!.version}`, '--json', '-a', app])).stdout) as { formation: unknown };
  t.deepEqual(info.formation, { web: 2, worker: 1 });
  const logs = await rack.ssh(['logs', '-p', 'worker', '-a', app]);
  t.regex(logs.stdout, /app\[worker\.1\]: worker tick/);

  const down = await rack.ssh(['ps:scale', 'web=1', 'worker=0', '-a', app]);
  t.is(down.code, 0, down.stderr);
  await rack.drained(app);
  const after = await ps();
  t.is(count(after, 'web'), 1);
  t.is(after.length, 1);
  t.is(await releaseCount(), releases + 1, 'scaling made no release; the config change one');
  const bad = await rack.ssh(['ps:scale', 'cron=1', '-a', app]);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /has no process type "cron" \(it has: web, worker\)/);
  const tooMany = await rack.ssh(['ps:scale', 'web=99', '-a', app]);
  t.regex(tooMany.stderr, /N from 0 to 20/);
});

test.serial('a crashed process is restarted and serves again', async (t) => {
  await rack.drained(app);
  const [before] = await ps();
  t.is((await rack.get(app, '/crash')).body, 'bye');
  let back = false;
  for (let i = 0; i < 100 && !back; i++) {
    await new Promise((r) => setTimeout(r, 100));
    back = (await rack.get(app).catch(() => ({ status: 0, body: '' }))).status === 200;
  }
  t.true(back);
  const [after] = await ps();
  t.is(after!.name, before!.name, 'the same process, restarted in place');
  t.true(after!.restarts >= 1);
});

test.serial('a web process killed outside rack (docker kill) is replaced and the app answers again', async (t) => {
  await rack.drained(app);
  const web = async () => (await exec('docker', ['ps', '-q', '--no-trunc', '--filter', `label=rack.app=${app}`, '--filter', 'label=rack.type=web'])).stdout.split('\n').filter(Boolean);
  const [killed] = await web();
  t.truthy(killed);
  const killedAt = Date.now();
  const kill = await exec('docker', ['kill', killed!]);
  t.is(kill.code, 0, kill.stderr);
  // Bounded overall, generously; how fast it comes back is logged, not asserted.
  let status = 0;
  for (const deadline = Date.now() + 30_000; status !== 200 && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 100));
    status = (await rack.get(app).catch(() => ({ status: 0, body: '' }))).status;
  }
  t.is(status, 200, 'answering again');
  t.log(`answering again ${Date.now() - killedAt} ms after docker kill`);
  const procs = (await ps()).filter((p) => p.type === 'web');
  t.deepEqual(procs.map((p) => p.state), ['up']);
  t.notDeepEqual(await web(), [killed]);
  const logs = await rack.ssh(['logs', '-a', app]);
  t.regex(logs.stdout, /rack\[supervisor\]: Process web\.\w+ is gone/);
});

test.serial('a web process removed outside rack (docker rm -f) is replaced too', async (t) => {
  await rack.drained(app);
  const web = async () => (await exec('docker', ['ps', '-aq', '--no-trunc', '--filter', `label=rack.app=${app}`, '--filter', 'label=rack.type=web'])).stdout.split('\n').filter(Boolean);
  const [removed] = await web();
  t.is((await exec('docker', ['rm', '-f', removed!])).code, 0);
  let status = 0;
  for (const deadline = Date.now() + 30_000; status !== 200 && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 100));
    status = (await rack.get(app).catch(() => ({ status: 0, body: '' }))).status;
  }
  t.is(status, 200, 'answering again');
  t.deepEqual((await ps()).filter((p) => p.type === 'web').map((p) => p.state), ['up']);
  t.is((await web()).length, 1);
});

test.serial('a request in flight during a swap completes; the command returns at the switch and the old process drains in the background', async (t) => {
  const slow = rack.get(app, '/slow?ms=4000');
  await new Promise((r) => setTimeout(r, 300));
  const restart = await rack.ssh(['ps:restart', '-a', app]);
  t.is(restart.code, 0, restart.stderr);
  t.notRegex(restart.stdout, /drain/, 'the timings are what the user waited for');
  // The slow request still runs on the old process: it is draining, the new one is up.
  const during = (await ps()).filter((p) => p.type === 'web');
  t.deepEqual(during.map((p) => p.state).sort(), ['draining', 'up']);
  const res = await slow;
  t.is(res.status, 200);
  t.regex(res.body, /^slow done /);
  t.not((await rack.get(app)).body, res.body.replace('slow done ', ''), 'a new process serves now');
  await rack.drained(app);
  t.deepEqual((await ps()).filter((p) => p.type === 'web').map((p) => p.state), ['up']);
});

test.serial('ps:restart TYPE replaces only that type', async (t) => {
  await rack.ssh(['ps:scale', 'worker=1', '-a', app]);
  await rack.drained(app);
  const before = await ps();
  const r = await rack.ssh(['ps:restart', 'worker', '-a', app]);
  t.is(r.code, 0, r.stderr);
  await rack.drained(app);
  const after = await ps();
  // A replacement keeps its name (worker.1): a new process is one started anew.
  const started = (procs: Proc[], type: string) => procs.filter((p) => p.type === type).map((p) => `${p.name} ${p.startedAt}`);
  t.deepEqual(started(after, 'web'), started(before, 'web'));
  t.notDeepEqual(started(after, 'worker'), started(before, 'worker'));
  t.deepEqual(after.map((p) => p.name), ['web.1', 'worker.1']);
  await rack.ssh(['ps:scale', 'worker=0', '-a', app]);
});

test.serial('the app.json health check decides; a failing one never takes traffic', async (t) => {
  await rack.drained(app);
  const before = (await rack.get(app)).body;
  const r = await rack.ssh(['config:set', 'HEALTH_FAIL=1', '-a', app]);
  t.is(r.code, 1);
  t.regex(r.stderr, /failed its health check: web: no passing answer on \/health after 5 attempts: GET \/health answered 500 \(a web process must answer below 500\)/);
  t.is((await rack.get(app)).body, before, 'the old process still serves');
  const left = await ps();
  t.is(left.length, 1, `the new processes were removed: ${JSON.stringify(left)}`);
  // The failed change is not applied: config shows what serves, so the same change can be retried.
  t.is((await rack.ssh(['config:get', 'HEALTH_FAIL', '-a', app])).code, 1);
});

/** Keep-alive clients looping on the app until `stop` resolves; counts what did not come back 200. */
async function underLoad(clients: number, during: () => Promise<void>): Promise<{ served: number; failed: string[] }> {
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  let running = true;
  let served = 0;
  const failed: string[] = [];
  const one = () =>
    new Promise<void>((resolve) => {
      const req = request({ host: '127.0.0.1', port: rack.httpPort, path: '/', headers: { host: `${app}.localhost` }, agent }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) served++;
          else failed.push(`HTTP ${res.statusCode}`);
          resolve();
        });
      });
      req.on('error', (err) => {
        failed.push(err.message);
        resolve();
      });
      req.end();
    });
  const loops = Array.from({ length: clients }, async () => {
    while (running) await one();
  });
  try {
    await new Promise((r) => setTimeout(r, 300));
    await during();
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    running = false;
    await Promise.all(loops);
    agent.destroy();
  }
  return { served, failed };
}

test.serial('a daemon restart keeps every process, adds none, and fails no request', async (t) => {
  await rack.ssh(['ps:scale', 'web=2', '-a', app]);
  await rack.drained(app);
  const before = (await ps()).map((p) => p.name).sort();
  const load = await underLoad(8, async () => {
    await rack.stop();
    await rack.start();
  });
  t.log(`${load.served} requests served across the restart, ${load.failed.length} failed`);
  t.deepEqual(load.failed, []);
  t.true(load.served > 100);
  t.deepEqual((await ps()).map((p) => p.name).sort(), before);
  t.is((await rack.get(app)).status, 200);
  const containers = await exec('docker', ['ps', '-aq', '--filter', `label=rack.app=${app}`]);
  t.is(containers.stdout.trim().split('\n').length, 2);
});
