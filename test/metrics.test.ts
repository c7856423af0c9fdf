import test from 'ava';
import { spawn } from 'node:child_process';
import { exec, RackDaemon } from './support/rack-daemon.js';
import { waitFor } from './support/router-processes.js';

// A real rackd, its real router process and a real app container: what `metrics` shows after a
// known set of requests, and when the router sends a line per request.

let rack: RackDaemon;
test.before(async () => {
  // Docker is required: without it this fails, never skips.
  const docker = await exec('docker', ['info', '--format', '{{.ServerVersion}}']);
  if (docker.code !== 0) throw new Error(`these tests need a Docker engine: ${docker.stderr}`);
  rack = await RackDaemon.create();
  const push = await rack.push(await rack.appRepo('node-status', 'meter'));
  if (push.code !== 0) throw new Error(push.stderr);
});
test.after.always(async () => {
  await rack?.destroy();
});

interface MetricsJson {
  resolution: string;
  total: { requests: number; status: Record<string, number>; p50: number | null; p99: number | null; cpu: number | null; memory: number | null; processes: number };
  points: { at: string; requests: number; cpu: number | null; memory: number | null }[];
}

async function metrics(args: string[] = []): Promise<MetricsJson> {
  const r = await rack.ssh(['metrics', '--json', '-a', 'meter', ...args]);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as MetricsJson;
}

test.serial('after N known requests, metrics --json shows exactly N with their status classes', async (t) => {
  const paths = [...Array(30).fill('/'), ...Array(6).fill('/s/404'), ...Array(4).fill('/s/500'), ...Array(2).fill('/s/301')] as string[];
  for (const p of paths) await rack.get('meter', p);
  await waitFor('the router summaries to reach the store', async () => (await metrics()).total.requests >= paths.length, 120_000);
  const m = await metrics();
  t.is(m.resolution, '10s');
  t.is(m.total.requests, 42);
  t.deepEqual(m.total.status, { '1xx': 0, '2xx': 30, '3xx': 2, '4xx': 6, '5xx': 4 });
  t.not(m.total.p50, null);
  t.true((m.total.p99 ?? 0) >= (m.total.p50 ?? 0));
  // The API answers the same.
  const token = await rack.createToken('metrics-reader');
  const api = await exec('curl', ['-s', '-H', `Authorization: Bearer ${token}`, '-H', 'Host: rack.localhost', `http://127.0.0.1:${rack.httpPort}/api/v1/apps/meter/metrics?since=1h&type=web`]);
  const viaApi = JSON.parse(api.stdout) as MetricsJson;
  t.is(viaApi.total.requests, 42, api.stdout);
  // A worker type gets no request: requests reach web processes only.
  t.is((await metrics(['--type', 'worker'])).total.requests, 0);
  const text = await rack.ssh(['metrics', '-a', 'meter']);
  t.regex(text.stdout, /^TIME \(UTC\)\s+REQ\/S\s+2XX\s+4XX\s+5XX\s+P50\s+P95\s+P99\s+CPU\s+MEMORY$/m);
  t.regex(text.stdout, /^total \(42 req\)\s/m);
});

test.serial('the web process is sampled: CPU and memory from its cgroup', async (t) => {
  // CPU is the use between two samples (every 10 s): the app is kept busy until one span has some.
  await waitFor('a CPU sample', async () => {
    await rack.get('meter', '/spin');
    return (await metrics()).points.some((p) => (p.cpu ?? 0) > 0);
  }, 120_000);
  const m = await metrics(['--type', 'web']);
  t.true(m.points.some((p) => (p.memory ?? 0) > 1024 * 1024), 'a node process uses more than a MB');
  t.is(m.total.processes, 1);
});

test.serial('bad flags are one clear line and a non-zero exit', async (t) => {
  for (const [args, line] of [
    [['--since', '8d'], /--since takes a duration like 30m, 1h or 7d \(at most 7d\)/],
    [['--since', '1y'], /--since takes a duration/],
    [['--type', 'a.b'], /invalid process type/],
  ] as const) {
    const r = await rack.ssh(['metrics', '-a', 'meter', ...args]);
    t.is(r.code, 1);
    t.regex(r.stderr, line);
  }
});

test.serial('router lines reach logs only while someone follows them', async (t) => {
  await rack.get('meter', '/unfollowed');
  const child = spawn('ssh', [...rack.sshArgs(), '--', 'logs', '-f', '-n', '0', '-a', 'meter'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.on('error', () => undefined);
  let seen = '';
  child.stdout.on('data', (c: Buffer) => (seen += c.toString()));
  try {
    // The follower is attached once the router, told of it, sends the lines of its requests.
    await waitFor('the router line of a followed request', async () => {
      await rack.get('meter', '/followed');
      return /rack\[router\]: method=GET path="\/followed"/.test(seen);
    });
  } finally {
    child.kill();
  }
  await waitFor('the follower to go', () => child.exitCode !== null || child.signalCode !== null);
  const logs = await rack.ssh(['logs', '-n', '500', '-a', 'meter']);
  t.notRegex(logs.stdout, /path="\/unfollowed"/, 'no line for a request nobody followed');
  t.regex(logs.stdout, /path="\/followed"/);
  // Once the follower has gone (its ssh session closed), rackd tells the router nobody wants them.
  await waitFor('rackd to tell the router', () => /"apps":\[\],"msg":"router: the apps whose access lines are wanted"/.test(rack.output));
  const count = async (): Promise<number> => (await rack.ssh(['logs', '-n', '1000', '-a', 'meter'])).stdout.match(/rack\[router\]/g)?.length ?? 0;
  const before = await count();
  for (let i = 0; i < 5; i++) await rack.get('meter', '/after');
  // Two round trips through rackd: a line the router had sent would have been read by then.
  await rack.ssh(['apps', '--json']);
  t.is(await count(), before, 'no line once the follower has gone');
});
